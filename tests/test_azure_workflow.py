"""The deployment workflow, read as an Azure engineer would: environments, sign-in order, cancellation, schedule."""

from __future__ import annotations

import re

import yaml

from contoso_chat.paths import REPO_ROOT


def workflow() -> dict:
    return yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "llmops.yml").read_text())


def uses_azure(job: dict) -> bool:
    return any(str(step.get("uses", "")).startswith("azure/login@") for step in job["steps"]) or \
        "vars.AZURE_OPENAI_ENDPOINT" in yaml.safe_dump(job.get("env", {}))


def test_jobs_that_read_azure_settings_run_in_a_github_environment_with_oidc():
    for name, job in workflow()["jobs"].items():
        if uses_azure(job):
            assert job.get("environment"), f"{name} reads Azure settings outside a GitHub environment"
            assert job["permissions"]["id-token"] == "write", f"{name} signs in with OIDC"
    assert "secrets." not in (REPO_ROOT / ".github" / "workflows" / "llmops.yml").read_text(), \
        "OIDC needs no stored secret; every setting is a variable of a GitHub environment"


def test_set_up_comes_before_sign_in_and_a_missing_setting_fails_the_job():
    for name, job in workflow()["jobs"].items():
        steps = job["steps"]
        logins = [i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("azure/login@")]
        if not logins:
            continue
        setup = [i for i, s in enumerate(steps) if s.get("run") == "make setup"]
        checks = [i for i, s in enumerate(steps) if "exit 1" in s.get("run", "") and "::error::" in s.get("run", "")]
        assert setup and setup[0] < logins[0], f"{name}: sign-in before the set-up of several minutes"
        assert checks and checks[0] < logins[0], f"{name}: missing settings must fail loudly before sign-in"
        names_checked = set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", steps[checks[0]]["run"]))
        wanted = {k for k, v in job["env"].items() if "vars." in str(v)}
        assert wanted <= names_checked, f"{name}: unchecked settings {wanted - names_checked}"


def test_deploy_is_never_cancelled_and_never_runs_on_a_schedule_or_pull_request():
    flow = workflow()
    assert "concurrency" not in flow or not flow["concurrency"].get("cancel-in-progress"), \
        "a workflow-wide cancel-in-progress would stop a deployment half way"
    deploy = flow["jobs"]["deploy"]
    assert deploy["concurrency"]["cancel-in-progress"] is False
    condition = deploy["if"]
    assert "github.event_name != 'schedule'" in condition and "github.event_name != 'pull_request'" in condition
    assert "refs/heads/main" in condition
    assert {"evaluate", "evaluate-azure"} <= set(deploy["needs"]), "both gates come before a deployment"
    assert deploy["steps"][-1]["run"] == "make deploy"


def test_the_azure_evaluation_runs_the_configuration_that_ships():
    jobs = workflow()["jobs"]
    shipped = {k: v for k, v in jobs["deploy"]["env"].items() if k.startswith(("AZURE_OPENAI", "AZURE_SEARCH", "COSMOS",
                                                                            "AZURE_CONTENT_SAFETY"))}
    evaluated = jobs["evaluate-azure"]["env"]
    assert shipped and all(evaluated.get(k) == v for k, v in shipped.items())
    assert "make eval" in [s.get("run") for s in jobs["evaluate-azure"]["steps"]]
    assert "hermetic" in jobs["evaluate"]["name"] and not uses_azure(jobs["evaluate"])


def test_the_deployment_keeps_every_cloud_setting_the_app_reads():
    """A cloud setting left out of the deploy job's environment is silently dropped from the endpoint
    (Content Safety was: the deployed app then ran without its content filter)."""
    from contoso_chat.azure.endpoint import CLOUD_SETTINGS
    from contoso_chat.backends.settings import Settings

    deploy = workflow()["jobs"]["deploy"]["env"]
    without_default = {name for name in CLOUD_SETTINGS
                       if not name.endswith("_BACKEND") and not Settings.model_fields[name].default}
    assert "AZURE_CONTENT_SAFETY_ENDPOINT" in without_default
    assert without_default <= set(deploy), f"dropped on deployment: {sorted(without_default - set(deploy))}"
