"""The annotation queue: RabbitMQ stream messages in, annotations in the data tree out (SPEC 5).

messages.py    the messages' values: kinds, roles, boxes, events
wire.py        their wire form: one field table, the decoder and encoder, the status sets
handlers.py    routing and applying a message to the tree (idempotent)
durability.py  writes whose fsync waits for the next position commit
offsets.py     offset.yaml and batched commits, never ahead of the data
rejects.py     rejected messages kept whole with a reason
consumer.py    the stream consumer: reconnects, warm shutdown
producer.py    publishing messages in the platform's format
"""

from azaion_training.queue.consumer import AnnotationConsumer, ConsumeStats, run_until_signalled
from azaion_training.queue.handlers import IMAGE_EXTENSIONS, AnnotationRouter, Applied
from azaion_training.queue.messages import (
    DETECTION_KEYS,
    Annotation,
    AnnotationStatus,
    BulkAnnotations,
    Detection,
    Message,
    Role,
    Source,
)
from azaion_training.queue.offsets import load_offset, save_offset
from azaion_training.queue.producer import (
    annotations_from_folder,
    bulk_from_folder,
    delete_stream,
    publish,
    review_messages,
)
from azaion_training.queue.rejects import Rejected, rejected_messages
from azaion_training.queue.wire import decode_message, encode_message

__all__ = [
    "DETECTION_KEYS",
    "IMAGE_EXTENSIONS",
    "Annotation",
    "AnnotationConsumer",
    "AnnotationRouter",
    "AnnotationStatus",
    "Applied",
    "BulkAnnotations",
    "ConsumeStats",
    "Detection",
    "Message",
    "Rejected",
    "Role",
    "Source",
    "annotations_from_folder",
    "bulk_from_folder",
    "decode_message",
    "delete_stream",
    "encode_message",
    "load_offset",
    "publish",
    "rejected_messages",
    "review_messages",
    "run_until_signalled",
    "save_offset",
]
