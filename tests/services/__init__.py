"""Real services started by the tests on 127.0.0.1 (RabbitMQ, ...); reused by several test areas."""
