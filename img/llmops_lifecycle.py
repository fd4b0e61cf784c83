"""The three phases of LLMOps and the loop between them (renders llmops_lifecycle.png)."""

from diagram import arrow, box, canvas, save

fig, ax = canvas(11, 5.0)
ax.text(5.5, 4.75, "The LLMOps lifecycle: three phases, one loop", ha="center", fontsize=13, fontweight="bold")
box(ax, 1.9, 2.7, 3.2, 2.6, "1. Ideation",
    "pick a pre-trained model\n(catalog, region, price)\nwrite and try prompts\nbuild a first prototype\non sample data", "blue")
box(ax, 5.5, 2.7, 3.2, 2.6, "2. Augmentation",
    "ground with your data (RAG)\nprompt variants, few-shot\nfine-tune only if needed\nevaluate: groundedness,\nrelevance, coherence, fluency", "green")
box(ax, 9.1, 2.7, 3.2, 2.6, "3. Operationalization",
    "deploy behind an API\ncontent filters and guards\ntracing, cost, latency\nCI/CD with an evaluation gate\nwatch for drift", "orange")
arrow(ax, (3.55, 2.7), (3.85, 2.7))
arrow(ax, (7.15, 2.7), (7.45, 2.7))
arrow(ax, (9.1, 1.35), (1.9, 1.35), curve=-0.12)
ax.text(5.5, 0.55, "production traces and feedback become new test cases", ha="center", fontsize=8.5, style="italic")
ax.text(5.5, 0.1, "Responsible AI and token cost are checked in every phase, not only at the end.",
        ha="center", fontsize=9, style="italic")
save(fig, __file__)
