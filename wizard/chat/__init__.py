"""The chat between a store's visitors and the merchant: conversations, their
messages, and who each conversation says it is (no Flask here)."""
