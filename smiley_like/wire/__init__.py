"""How events travel: a codec for batches, the tracer's publisher, the monitor's listener."""
