"""What the assistant runs on: settings, the chat model and its local server, embeddings, search, customers,
content safety and tracing, each with a local and a cloud implementation chosen by settings."""
