"""Solutions to notebook 00's exercises (run by tests/test_exercises.py)."""

import pandas as pd

import exercises
import workshop


def exercise_1() -> bool:
    """Ask the model, with no facts, how heavy the Summit Dome 2 Tent is."""
    reply = workshop.chat_client().chat.completions.create(
        model=workshop.chat_model(), temperature=0, seed=workshop.SEED, max_tokens=60,
        messages=[{"role": "user", "content": "How heavy is the Summit Dome 2 Tent?"}])
    return exercises.check("00-1", reply)


def exercise_2() -> bool:
    """The cost table with 4,000-token prompts (a long retrieved context)."""
    prices = pd.read_csv(workshop.DATA / "pricing.csv")
    chat_models = prices[~prices["model"].str.startswith(("text-embedding", "all-MiniLM"))
                         & (prices["provider"] != "azure-openai-fine-tuning")].copy()
    prompt_tokens, completion_tokens = 4000, 150
    chat_models["per_conversation_usd"] = (chat_models["input_per_1k"] * prompt_tokens
                                           + chat_models["output_per_1k"] * completion_tokens) / 1000
    chat_models["per_month_usd"] = chat_models["per_conversation_usd"] * 1000 * 30
    cost_table = chat_models[["model", "per_conversation_usd", "per_month_usd"]].round(4)
    return exercises.check("00-2", cost_table, prompt_tokens)
