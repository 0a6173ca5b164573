"""The `redis://` Faust store: a write-back cache of each owned partition, flushed to Redis."""
