"""The Kinesis sink: ``df.write.format("kinesis")`` and ``df.writeStream.format("kinesis")``."""
