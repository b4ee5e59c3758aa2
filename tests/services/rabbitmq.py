"""The tests' RabbitMQ node: the library's private node (`azaion_training.queue.broker`)."""

from azaion_training.queue.broker import RabbitMQNode, available, free_port, port_open

__all__ = ["RabbitMQNode", "available", "free_port", "port_open"]
