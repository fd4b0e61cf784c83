"""Solutions to notebook 01's exercises (run by tests/test_exercises.py)."""

import exercises
from contoso_chat.azure import provisioning
from contoso_chat.backends.settings import resolve


def exercise_1() -> bool:
    """Put your own region and project name in the settings and find them in the plan."""
    settings = resolve({"AZURE_LOCATION": "westeurope", "AZURE_AI_PROJECT_NAME": "my-contoso"})
    return exercises.check("01-1", provisioning.plan_yaml(provisioning.build_plan(settings)))


def exercise_2() -> bool:
    """Add a gpt-4o deployment to the plan and watch the daily cost change."""
    import pandas as pd

    import workshop

    plan = provisioning.build_plan(resolve({}))
    prices = pd.read_csv(workshop.DATA / "pricing.csv").set_index("model")

    def per_day(deployments) -> float:
        return sum(1000 * (prices.loc[d.model, "input_per_1k"] * (50 if "embedding" in d.model else 1500)
                           + prices.loc[d.model, "output_per_1k"] * (0 if "embedding" in d.model else 150)) / 1000
                   for d in deployments)

    before = per_day(plan.deployments)
    plan.deployments += (provisioning.ModelDeployment("gpt-4o", "gpt-4o", "2024-11-20", "GlobalStandard", 10, "chat"),)
    return exercises.check("01-2", plan, before, per_day(plan.deployments))
