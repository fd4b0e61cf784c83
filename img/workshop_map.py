"""The workshop's notebooks as one path through the lifecycle (renders workshop_map.png)."""

from diagram import arrow, box, canvas, save

STEPS = [
    ("00", "Introduction", "MLOps to LLMOps\nfirst model call", "grey"),
    ("01", "Provision", "Foundry as code\nlocal stack up", "blue"),
    ("02", "Prompts", "prompty, tokens,\ncost, experiment", "blue"),
    ("03", "RAG", "hybrid search,\ncustomer data", "green"),
    ("04", "Fine-tune", "LoRA on a CPU,\nvs prompting, RAG", "green"),
    ("05", "Evaluate", "metrics that fail,\njudges, gate", "green"),
    ("06", "Deploy", "hardened API,\nload test", "orange"),
    ("07", "Operate", "tracing, red team,\nfairness, CI/CD", "orange"),
    ("08", "Migrate", "Agent Framework,\nparity measured", "purple"),
]
fig, ax = canvas(18, 2.9)
ax.text(9, 2.65, "Workshop map", ha="center", fontsize=13, fontweight="bold")
for i, (number, title, body, color) in enumerate(STEPS):
    x = 1.0 + i * 2.0
    box(ax, x, 1.25, 1.75, 1.55, f"{number} {title}", body, color)
    if i < len(STEPS) - 1:
        arrow(ax, (x + 0.9, 1.25), (x + 1.1, 1.25))
ax.text(9, 0.15, "ideation (grey, blue)  ->  augmentation (green)  ->  operationalization (orange)  ->  "
        "the successor engine (purple)",
        ha="center", fontsize=9, style="italic")
save(fig, __file__)
