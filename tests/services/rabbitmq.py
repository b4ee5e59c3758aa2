"""The tests' RabbitMQ node: the library's private node (`azaion_training.queue.broker`)."""

from azaion_training.queue.broker import RabbitMQNode, ServerTls, available, free_port, port_open

__all__ = ["RabbitMQNode", "ServerTls", "available", "free_port", "port_open"]
