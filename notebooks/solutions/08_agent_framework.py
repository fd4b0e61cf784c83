"""Solutions to notebook 08's exercises (run by tests/agentframework/test_exercise.py, in the Agent Framework
environment; tests/test_exercises.py skips them where Agent Framework is not installed)."""

import exercises
import workshop
from contoso_chat.assistant import ContosoChat


def exercise_1() -> bool:
    """Questions of your own through both engines: one answered by the model, one declined before it."""
    from contoso_chat.agentframework import engine

    app = ContosoChat(settings=workshop.settings())
    agent = engine.contoso_agent(app)
    questions = [("How warm is the Nightfall 20 Down Sleeping Bag?", "C1003"),
                 ("Do you sell stand-up paddle boards?", "C1003")]
    pairs = []
    for question, customer in questions:
        engine.settle(app)
        by_flow = app(question, customer)
        engine.settle(app)
        pairs.append((by_flow, engine.ask(agent, question, customer)))
    return exercises.check("08-1", pairs)
