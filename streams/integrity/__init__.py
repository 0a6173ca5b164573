"""Trusting the state in Redis only as far as its saved offsets say: resume from them, rebuild
what Kafka no longer holds from the input topics, and say what cannot be rebuilt."""
