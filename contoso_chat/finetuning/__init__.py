"""Fine-tuning: training data from the data set, LoRA training on the CPU, GGUF export, Azure OpenAI jobs."""
