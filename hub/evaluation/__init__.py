"""Dedup evaluation: replay canonical ticket JSONL through the real engine and score it."""
