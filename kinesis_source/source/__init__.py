"""The source: driver planning (``stream_reader`` and the pure decisions it calls: ``lineage``,
``admission``, ``positions``, ``data_loss``) and executor reading (``shard_reader``,
``multi_shard``)."""
