"""Contoso Chat: a retrieval-augmented customer-support assistant for Contoso Outdoors."""
