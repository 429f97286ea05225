"""Demo only: play a reviewer in Label Studio so that `make demo` can show the whole loop.

It annotates every unannotated task of the review project through the Label Studio API, as
the logged-in (demo admin) user: accept when the judge accepted, reject with a reason when it
did not; it also rejects about one in ten of the judge's accepts and edits about one in seven
(the edit then goes back through judging and quality checks). Real datasets are reviewed by people in the Label Studio UI, never by this.
"""
from __future__ import annotations

import sys

from biocurate.config import load_config
from biocurate.review import _project, connect
from biocurate.sampling import unit


def main() -> int:
    config = load_config()
    client = connect(config)
    project = _project(client, config, create=False)
    done = {"accept": 0, "reject": 0, "accept_with_edit": 0}
    for task in client.tasks.list(project=project.id, page_size=500):
        if task.total_annotations:
            continue
        judge = task.data.get("judge", "")
        verdict = "accept" if ": accept" in judge else "reject"
        draw = unit("demo-review", task.data["ext_id"])
        if verdict == "accept" and draw < 0.1:
            verdict = "reject"  # a reviewer disagrees with the judge now and then
        elif verdict == "accept" and draw < 0.25:
            verdict = "accept_with_edit"
        result = [{"from_name": "verdict", "to_name": "query", "type": "choices",
                   "value": {"choices": [verdict]}}]
        if verdict == "reject":
            result.append({"from_name": "reject_reason", "to_name": "query", "type": "choices",
                           "value": {"choices": ["observation_uninformative"]}})
        if verdict == "accept_with_edit":
            question = task.data["query"].rstrip("?. ")
            result.append({"from_name": "edited_query", "to_name": "query", "type": "textarea",
                           "value": {"text": [f"For my project, {question[0].lower()}{question[1:]}?"]}})
        client.annotations.create(id=task.id, result=result)
        done[verdict] += 1
    print(f"demo reviewer annotated {sum(done.values())} tasks: {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
