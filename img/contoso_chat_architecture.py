"""How a Contoso Chat answer is made, and which backend serves each part (renders contoso_chat_architecture.png)."""

from diagram import arrow, box, canvas, save

fig, ax = canvas(12, 5.4)
ax.text(6, 5.15, "Contoso Chat: one request, end to end", ha="center", fontsize=13, fontweight="bold")
box(ax, 1.2, 3.3, 2.0, 1.2, "Request", "question, history\ncustomer id (from\nthe caller, not the text)", "grey")
box(ax, 3.55, 3.3, 1.9, 1.2, "Input guard", "empty, too long,\ntoo much history", "purple")
box(ax, 6.0, 4.15, 2.3, 1.15, "Retrieve", "manuals, policies, catalog\nLanceDB | Azure AI Search", "blue")
box(ax, 6.0, 2.45, 2.3, 1.15, "Look up customer", "this customer's orders only\nSQLite | Cosmos DB", "blue")
box(ax, 8.45, 3.3, 1.9, 1.2, "Prompty", "system prompt\n+ documents\n+ orders + history", "green")
box(ax, 10.7, 3.3, 2.0, 1.2, "Chat model", "llama.cpp SmolLM2\n| Azure OpenAI", "orange")
box(ax, 10.7, 1.2, 2.0, 1.1, "Output guard", "no other customer,\nno links or images", "purple")
box(ax, 7.0, 1.1, 3.2, 0.9, "{answer, citations, usage}", "", "grey")
arrow(ax, (2.2, 3.3), (2.6, 3.3))
arrow(ax, (4.5, 3.45), (4.85, 4.0))
arrow(ax, (4.5, 3.15), (4.85, 2.6))
arrow(ax, (7.15, 4.0), (7.5, 3.5))
arrow(ax, (7.15, 2.6), (7.5, 3.1))
arrow(ax, (9.4, 3.3), (9.7, 3.3))
arrow(ax, (10.7, 2.7), (10.7, 1.75))
arrow(ax, (9.7, 1.15), (8.65, 1.15))
ax.text(6, 0.15, "The same ContosoChat object runs in the notebooks, under prompt flow, behind the HTTP API "
        "and in an Azure ML endpoint.", ha="center", fontsize=9, style="italic")
save(fig, __file__)
