"""Demo only: play a reviewer in Label Studio so that `make demo` can show the whole loop.

It annotates every unannotated task of the review project through the Label Studio API as a
clearly named non-human user, ``demo-reviewer@biocurate.local`` ("Demo script (not a human)"),
created on first use; the dataset card and manifest count the items it reviewed as not reviewed
by a person (config ``review.scripted_annotators``). It accepts when the judge accepted and
rejects with a reason when it did not; it also rejects about one in ten of the judge's accepts
(the reason by kind: a no_tool task's is that a tool would answer it, a multi_step task's that its
later step is not needed) and rewords about one in seven of those it can (``reworded``: the opening words only, e.g.
"Which" -> "What", a request made a polite question; identifiers and names untouched, no filler
added). The edit then goes back through judging and quality checks and, if it passes, is
published (annotations/reviewer_guide.md, "Editing"). Real datasets are reviewed by people in
the Label Studio UI, never by this.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from biocurate.config import load_config
from biocurate.review import _project, connect
from biocurate.sampling import unit

# Who the demo reviewer is in Label Studio: a user no one mistakes for a person.
DEMO_REVIEWER = {
    "email": "demo-reviewer@biocurate.local",
    "username": "demo-reviewer",
    "first_name": "Demo",
    "last_name": "script (not a human)",
}

# How the demo reviewer rewords a question: the opening words only, the rest kept as written
# (identifiers, symbols and names keep their case). A request becomes a polite question.
REWORDINGS = [
    (re.compile(r"^What is the "), "What's the "),
    (re.compile(r"^Which "), "What "),
    (re.compile(r"^Can you "), "Could you "),
    (re.compile(r"^Could you "), "Can you "),
    (re.compile(r"^Tell me about (.*)\.$"), r"What can you tell me about \1?"),
    (
        re.compile(
            r"^(Give|Show|List|Find|Download|Return|Fetch|Convert|Map|Summarise|Check|Search|Start|Run|Submit|"
            r"Match|Retrieve|Print|Describe|Verify|Export) (.*)\.$"
        ),
        lambda m: f"Could you {m.group(1).lower()} {m.group(2)}?",
    ),
]


# The reason the demo reviewer gives for a reject, by the task's kind (a call set's task data has
# "kind", docs/item_kinds.md; a single call's has none); annotations/reviewer_guide.md.
REJECT_REASON = {"no_tool": "tool_would_answer", "multi_step": "step_not_needed"}


def reworded(question: str) -> str | None:
    """The question in the reviewer's words, or None when no rewording applies."""
    for pattern, replacement in REWORDINGS:
        if pattern.search(question):
            return pattern.sub(replacement, question, count=1)
    return None


def demo_reviewer(client: Any) -> Any:
    """The demo reviewer's Label Studio user, created (named as a script) when missing."""
    for user in client.users.list():
        if user.email == DEMO_REVIEWER["email"]:
            if (user.first_name, user.last_name) != (DEMO_REVIEWER["first_name"], DEMO_REVIEWER["last_name"]):
                user = client.users.update(
                    id=user.id, first_name=DEMO_REVIEWER["first_name"], last_name=DEMO_REVIEWER["last_name"]
                )
            return user
    return client.users.create(**DEMO_REVIEWER)


def main() -> int:
    config = load_config()
    client = connect(config)
    project = _project(client, config, create=False)
    reviewer = demo_reviewer(client)
    done = {"accept": 0, "reject": 0, "accept_with_edit": 0}
    for task in client.tasks.list(project=project.id, page_size=500):
        if task.total_annotations:
            continue
        verdict = "accept" if task.data.get("judge_verdict") == "accept" else "reject"
        draw = unit("demo-review", task.data["ext_id"])
        edit = reworded(task.data["query"])
        if verdict == "accept" and draw < 0.1:
            verdict = "reject"  # a reviewer disagrees with the judge now and then
        elif verdict == "accept" and draw < 0.25 and edit:
            verdict = "accept_with_edit"
        result = [{"from_name": "verdict", "to_name": "query", "type": "choices", "value": {"choices": [verdict]}}]
        if verdict == "reject":
            result.append(
                {
                    "from_name": "reject_reason",
                    "to_name": "query",
                    "type": "choices",
                    "value": {"choices": [REJECT_REASON.get(task.data.get("kind"), "observation_uninformative")]},
                }
            )
        if verdict == "accept_with_edit":
            result.append(
                {"from_name": "edited_query", "to_name": "query", "type": "textarea", "value": {"text": [edit]}}
            )
        client.annotations.create(id=task.id, result=result, completed_by=reviewer.id)
        done[verdict] += 1
        if sum(done.values()) % 100 == 0:  # progress: about 1 s per task on a busy machine
            print(f"  demo reviewer: {sum(done.values())} tasks annotated ...", flush=True)
    print(f"demo reviewer ({reviewer.email}, a script) annotated {sum(done.values())} tasks: {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
