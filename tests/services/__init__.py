"""Real services the tests start and stop on 127.0.0.1: RabbitMQ, an S3 server, the Azaion API."""
