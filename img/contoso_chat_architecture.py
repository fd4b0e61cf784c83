"""How a Contoso Chat answer is made, which backend serves each part, and where each part lives in the package
(renders contoso_chat_architecture.png)."""

from diagram import arrow, box, canvas, save

fig, ax = canvas(12, 6.9)
ax.text(6, 6.65, "Contoso Chat: one request, end to end", ha="center", fontsize=13, fontweight="bold")
top = 1.3  # everything of the request flow sits above the package strip
box(ax, 1.2, 3.3 + top, 2.0, 1.2, "Request", "question, history\ncustomer id (from\nthe sign-in, not the text)", "grey")
box(ax, 3.55, 3.3 + top, 1.9, 1.2, "Input guard", "empty, too long, fake\nturns; harm check", "purple")
box(ax, 6.0, 4.15 + top, 2.3, 1.15, "Retrieve", "manuals, policies, catalog\nLanceDB | Azure AI Search", "blue")
box(ax, 6.0, 2.45 + top, 2.3, 1.15, "Look up customer", "this customer's orders only\nSQLite | Cosmos DB", "blue")
box(ax, 8.45, 3.3 + top, 1.9, 1.2, "Prompty", "rules + facts with\nsource ids + orders\n+ history", "green")
box(ax, 10.7, 3.3 + top, 2.0, 1.2, "Chat model", "llama.cpp SmolLM2\n(base | fine-tuned)\n| Azure OpenAI", "orange")
box(ax, 10.7, 1.2 + top, 2.0, 1.2, "Output guard", "leaks, invented records,\nclaimed actions, links;\nharm check", "purple")
box(ax, 7.0, 1.1 + top, 3.4, 1.0, "{answer, citations, usage}", "citations the model made;\nusage says if and why it declined", "grey")
arrow(ax, (2.2, 3.3 + top), (2.6, 3.3 + top))
arrow(ax, (4.5, 3.45 + top), (4.85, 4.0 + top))
arrow(ax, (4.5, 3.15 + top), (4.85, 2.6 + top))
arrow(ax, (7.15, 4.0 + top), (7.5, 3.5 + top))
arrow(ax, (7.15, 2.6 + top), (7.5, 3.1 + top))
arrow(ax, (9.4, 3.3 + top), (9.7, 3.3 + top))
arrow(ax, (10.7, 2.7 + top), (10.7, 1.8 + top))
arrow(ax, (9.7, 1.15 + top), (8.7, 1.15 + top))
ax.text(6, 1.3, "contoso_chat/, by role", ha="center", fontsize=10, fontweight="bold")
parts = [("app core", "assistant, prompts,\nguards, chunking, records", "green"),
         ("backends/", "settings, model server,\nsearch, customers, safety", "blue"),
         ("serving/", "HTTP API, tokens,\nAzure ML, prompt flow", "orange"),
         ("evaluation/", "batch, metrics, judges,\ngate, red team, fairness", "purple"),
         ("finetuning/", "data, LoRA,\nGGUF export", "grey"),
         ("azure/", "provisioning, identity,\nendpoint", "blue")]
for n, (title, body, color) in enumerate(parts):
    box(ax, 1.0 + n * 2.0, 0.6, 1.9, 1.0, title, body, color)
save(fig, __file__)
