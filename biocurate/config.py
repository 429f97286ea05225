"""The effective configuration: a TOML file for settings, the environment for secrets.

Every section is a frozen pydantic model with ``extra="forbid"`` so that a typo in the
config file is an error naming the key, not a silently ignored setting.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from biocurate.errors import ConfigError
from biocurate.hashing import content_hash

if TYPE_CHECKING:
    import polars as pl

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "biocurate.toml"

# Every secret biocurate reads, and the only place they are listed: read with ``secret()``,
# shown as set/unset by ``masked()`` and replaced by *** in log lines (``biocurate.log``).
# They never enter the config file or the store.
SECRET_ENV = {
    "llm_api_key": "BIOCURATE_LLM_API_KEY",
    "judge_api_key": "BIOCURATE_JUDGE_API_KEY",
    "eval_api_key": "BIOCURATE_EVAL_API_KEY",
    "ncbi_api_key": "NCBI_API_KEY",
    "label_studio_token": "LABEL_STUDIO_API_KEY",
}


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# A DuckDB memory limit as `[store] memory_limit` takes it ("1GB", "512 MiB"), and its units in bytes.
MEMORY_LIMIT = r"^(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$"
_MEMORY_UNITS = {"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def memory_bytes(limit: str) -> float:
    """The bytes of a memory limit written as MEMORY_LIMIT takes it."""
    found = re.match(MEMORY_LIMIT, limit.strip())
    if found is None:
        raise ValueError(f"not a memory limit: {limit!r} (e.g. 1GB, 512 MiB)")
    return float(found.group(1)) * _MEMORY_UNITS[found.group(2)]


class StoreConfig(Section):
    path: Path = Path("data/out/biocurate.duckdb")
    # DuckDB's memory during pipeline stages (its default is 80% of the machine); beyond it, it
    # spills to disk next to the store. Keeps a 100k-call rebuild within about 2 GiB.
    memory_limit: str = Field("1GB", pattern=MEMORY_LIMIT)
    # How long a command or stage waits while another process holds the store file (DuckDB lets
    # one process in at a time; stages hold it only while they write a batch): README, "Working
    # during a rebuild".
    lock_wait_seconds: float = Field(30.0, ge=0)


class QuotaConfig(Section):
    """Calls per function by the most specific rule: function, then tool group, category, database."""

    function: dict[str, int] = Field(default_factory=dict)
    tool: dict[str, int] = Field(default_factory=dict)
    category: dict[str, int] = Field(default_factory=dict)
    database: dict[str, int] = Field(default_factory=dict)


class KindsConfig(Section):
    """Sets per declaration of catalog/item_kinds.yaml, per kind (issue 18); 0 turns a kind off."""

    parallel: int = Field(0, ge=0)
    multi_step: int = Field(0, ge=0)
    no_tool: int = Field(0, ge=0)


class SampleConfig(Section):
    seeds_dir: Path = Path("data/seeds")
    catalog_dir: Path = Path("catalog")
    seed: int = 13
    calls_per_function: int = Field(3, ge=0)  # the default quota
    quota: QuotaConfig = QuotaConfig()
    kinds: KindsConfig = KindsConfig()
    # Entities discovered in responses (live expansion) become seeds of the next rebuild.
    use_discovered: bool = True

    def quota_for(self, function: str, tool_group: str, category: str, database: str) -> int:
        q = self.quota
        for table, key in (
            (q.function, function),
            (q.tool, tool_group),
            (q.category, category),
            (q.database, database),
        ):
            if key in table:
                return table[key]
        return self.calls_per_function


class HostLimit(Section):
    rate_per_second: float = Field(gt=0)
    max_concurrency: int = Field(4, ge=1)


class ExecuteConfig(Section):
    transport: Literal["live", "record", "replay"] = "replay"
    snapshot_dir: Path = Path("data/demo_snapshot")
    # Override API roots (e.g. a loopback stand-in): {"https://rest.ensembl.org" = "http://127.0.0.1:8000/ensembl"}.
    base_urls: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(30.0, gt=0)
    max_retries: int = Field(4, ge=0)
    backoff_seconds: float = Field(0.5, ge=0)
    max_backoff_seconds: float = Field(30.0, ge=0)
    cache_max_age_hours: float = Field(24 * 30, ge=0)
    observation_max_chars: int = Field(2000, ge=200)
    batch_size: int = Field(200, ge=1)
    # Aim a little under each host's limit: request arrival jitters, the server counts arrivals.
    rate_safety: float = Field(0.92, gt=0, le=1)
    # Adaptive rate per host (AIMD): a 429, or a 503 with Retry-After, multiplies the host's rate by
    # rate_decrease (1 keeps it fixed); each second of answers gives back rate_recovery of the
    # configured rate, never above it. The state lasts the whole process (every batch and stage).
    rate_decrease: float = Field(0.5, gt=0, le=1)
    rate_recovery: float = Field(0.05, gt=0)
    # NCBI BLAST URL API: wait RTOE, then poll a job no more than once a minute, give up after this.
    blast_poll_seconds: float = Field(60.0, ge=0)
    blast_max_wait_seconds: float = Field(1200.0, ge=0)
    ncbi_email: str = "biocurate@example.org"
    ncbi_tool: str = "biocurate"
    hosts: dict[str, HostLimit] = Field(
        default_factory=lambda: {
            "eutils.ncbi.nlm.nih.gov": HostLimit(rate_per_second=3, max_concurrency=3),
            "blast.ncbi.nlm.nih.gov": HostLimit(rate_per_second=0.1, max_concurrency=1),
            "rest.ensembl.org": HostLimit(rate_per_second=15, max_concurrency=8),
            "rest.uniprot.org": HostLimit(rate_per_second=10, max_concurrency=8),
        }
    )


class LLMConfig(Section):
    provider: Literal["template", "openai"] = "template"
    base_url: str = "https://api.openai.com/v1"
    model: str = "template-v1"
    temperature: float = Field(0.7, ge=0, le=2)
    seed: int = 7
    max_concurrency: int = Field(4, ge=1)
    requests_per_second: float = Field(5.0, gt=0)
    timeout_seconds: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0)
    # USD per 1M tokens, used for per-call cost accounting.
    price_per_million_prompt: float = Field(0.0, ge=0)
    price_per_million_completion: float = Field(0.0, ge=0)


class SynthesisConfig(Section):
    queries_per_call: int = Field(2, ge=1, le=10)
    prompt_dir: Path = Path("prompts")
    generator: LLMConfig = LLMConfig()
    judge: LLMConfig = LLMConfig(model="rules-v1")


class QualityConfig(Section):
    suites_dir: Path = Path("expectations")
    min_query_chars: int = Field(15, ge=1)
    max_query_chars: int = Field(400, ge=1)
    min_query_words: int = Field(4, ge=1)
    max_query_words: int = Field(80, ge=1)
    min_judge_score: float = Field(0.5, ge=0, le=1)
    # Observations: shortest useful answer ({"ping":1} is 10 characters); the longest is
    # [execute] observation_max_chars.
    min_observation_chars: int = Field(8, ge=1)
    # Words that give the API away in a question (whole words, any case), besides URLs and the
    # function's own and code-like parameter names.
    leak_jargon: list[str] = Field(
        default_factory=lambda: [
            "api",
            "endpoint",
            "json",
            "url",
            "http",
            "https",
            "rest api",
            "parameter",
            "query string",
            "retmax",
            "retmode",
            "rettype",
            "dbfrom",
            "linkname",
            "webenv",
            "usehistory",
        ]
    )
    # Function names that are also ordinary words a person would use ("run a BLAST search").
    leak_allowed: list[str] = Field(default_factory=lambda: ["blast"])
    # Near-duplicate questions: Jaccard similarity of their word sets (case, punctuation, word
    # order and filler words ignored) at or above which the later question is flagged; only
    # questions naming the same identifiers are compared.
    near_duplicate_within_call: float = Field(0.8, gt=0, le=1)
    near_duplicate_in_dataset: float = Field(0.8, gt=0, le=1)
    # Balance of the surviving questions: share per database, per category, per tool.
    min_database_share: float = Field(0.05, ge=0, le=1)
    max_database_share: float = Field(0.8, ge=0, le=1)
    min_category_share: float = Field(0.05, ge=0, le=1)
    max_category_share: float = Field(0.5, ge=0, le=1)
    max_tool_share: float = Field(0.05, ge=0, le=1)
    min_tool_items: int = Field(1, ge=0)
    # Expectation name -> "blocking" or "warning"; overrides the suite file's default
    # (row and duplicate checks block, balance checks warn). An unknown name is an error.
    severity: dict[str, Literal["blocking", "warning"]] = Field(default_factory=dict)
    data_docs_dir: Path = Path("data/out/data_docs")


class ReviewConfig(Section):
    url: str = "http://127.0.0.1:18080"
    project_title: str = "biocurate review"
    label_config: Path = Path("annotations/label_config.xml")
    # The reviewer guide (Markdown), shown in Label Studio as the project's instructions.
    instructions: Path = Path("annotations/reviewer_guide.md")
    # Pre-select the judge's verdict in the form (a Label Studio prediction); off: reviewers decide unprompted.
    prefill_judge_verdict: bool = False
    batch_size: int = Field(100, ge=1)
    # How several annotations of one task resolve: "any_reject" or "majority".
    resolve: Literal["any_reject", "majority"] = "any_reject"
    enabled: bool = True
    # Label Studio users (emails) that are scripts, not people: the demo reviewer. Items only they
    # reviewed are published as reviewed_by = "script" (Parquet, manifest, dataset card).
    scripted_annotators: list[str] = ["demo-reviewer@biocurate.local"]


class PublishConfig(Section):
    out_dir: Path = Path("data/out/versions")
    # Split ratios (must add up to 1).
    train: float = Field(0.8, ge=0, le=1)
    validation: float = Field(0.1, ge=0, le=1)
    test: float = Field(0.1, ge=0, le=1)
    split_seed: str = "biocurate-splits-v1"
    # What must never straddle splits: every question about one call ("call"), or also every
    # call about one entity ("entity"; calls without an entity fall back to their call).
    group_by: Literal["call", "entity"] = "call"
    # New groups are spread over the splits per (database, tool) stratum; false: by hash alone.
    stratify: bool = True
    # Other tools offered next to the right one in the ShareGPT/OpenAI records (same database first).
    distractor_tools: int = Field(3, ge=0)
    # Said to the model in every ShareGPT/OpenAI record: one prompt for every item kind (single,
    # parallel, multi_step, no_tool; docs/item_kinds.md), since the model must tell them apart itself.
    system_prompt: str = (
        "You are a biomedical research assistant. Answer the user's question by calling the "
        "available tools with the right arguments: one call when one answers it, several in one "
        "turn when the question needs independent calls, one after another when a call needs a "
        "value from an earlier result, and no call when none of the tools can answer it (then say so)."
    )

    @model_validator(mode="after")
    def _ratios_add_up(self) -> PublishConfig:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must add up to 1, not {total:g}")
        return self


CRON_FIELD = re.compile(r"^[0-9A-Za-z*,/?#L\-]+$")


class ScheduledJob(Section):
    """One scheduled deployment: a cron expression and the flow parameters it runs with."""

    cron: str
    enabled: bool = True
    # Extra flow parameters, e.g. {stages = ["sample", "execute"]} or {overrides = {"drift.sample_size" = 50}}.
    parameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("cron")
    @classmethod
    def _cron_shape(cls, value: str) -> str:
        fields = value.split()
        if value.strip().startswith("@") or (len(fields) == 5 and all(CRON_FIELD.match(f) for f in fields)):
            return value.strip()
        raise ValueError(f"{value!r} is not a cron expression (five fields: minute hour day month weekday)")


class ScheduleConfig(Section):
    """`biocurate serve`: when each job runs (cron, in `timezone`) and with which parameters."""

    timezone: str = "UTC"
    # A scheduled review sync or publish waits this long for a running rebuild or drift check to
    # finish (the store has one writer); an overlapping rebuild or drift check refuses at once.
    lock_wait_seconds: float = Field(1800.0, ge=0)
    rebuild: ScheduledJob = ScheduledJob(cron="0 2 * * *")
    review_sync: ScheduledJob = ScheduledJob(cron="*/30 * * * *")
    drift: ScheduledJob = ScheduledJob(cron="0 4 * * 0")
    publish: ScheduledJob = ScheduledJob(cron="0 6 * * 1")


class DriftConfig(Section):
    # Calls of the latest published version re-executed per check; 0 = all of them. A sample
    # takes the calls checked longest ago first, so successive checks cover the whole version.
    sample_size: int = Field(0, ge=0)


class RunnerConfig(Section):
    """Where the execute and synthesize stages run their batches (the store stays single-writer)."""

    task_runner: Literal["default", "dask"] = "default"
    # "" starts a local Dask cluster for the run; "tcp://scheduler:8786" uses an existing one.
    dask_address: str = ""
    dask_workers: int = Field(2, ge=1)
    dask_threads_per_worker: int = Field(1, ge=1)
    # Calls per distributed task.
    chunk_size: int = Field(500, ge=1)


class Config(Section):
    store: StoreConfig = StoreConfig()
    sample: SampleConfig = SampleConfig()
    execute: ExecuteConfig = ExecuteConfig()
    synthesis: SynthesisConfig = SynthesisConfig()
    quality: QualityConfig = QualityConfig()
    review: ReviewConfig = ReviewConfig()
    publish: PublishConfig = PublishConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    drift: DriftConfig = DriftConfig()
    runner: RunnerConfig = RunnerConfig()

    root: Path = PROJECT_ROOT

    def path(self, p: Path) -> Path:
        """Resolve a configured path against the project root (absolute paths stay as they are)."""
        return p if p.is_absolute() else self.root / p

    def folder(self, setting: str) -> Path:
        """A configured folder that must exist (``setting`` such as "sample.catalog_dir"), resolved;
        a ConfigError naming the setting if it does not."""
        section, key = setting.split(".")
        folder = self.path(getattr(getattr(self, section), key))
        if not folder.is_dir():
            raise ConfigError(f"{folder} is not a folder: set [{section}] {key} in the config to an existing one")
        return folder

    def config_hash(self) -> str:
        """A hash of every setting that shapes the data (not where files live, when jobs run or where)."""
        data = self.model_dump(mode="json", exclude={"root", "store", "schedule", "drift", "runner"})
        return content_hash(data)


def secret(name: str) -> str | None:
    """Read one secret from its environment variable (``SECRET_ENV``)."""
    value = os.environ.get(SECRET_ENV[name], "").strip()
    return value or None


def load_config(path: Path | str | None = None, overrides: dict | None = None) -> Config:
    """Load the TOML config (default: ``biocurate.toml`` at the project root, or $BIOCURATE_CONFIG)."""
    path = Path(path or os.environ.get("BIOCURATE_CONFIG") or DEFAULT_CONFIG)
    data: dict = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    elif path != DEFAULT_CONFIG:
        raise ConfigError(f"config file {path} does not exist")
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    store_path = os.environ.get("BIOCURATE_STORE")
    if store_path:
        data.setdefault("store", {})["path"] = store_path
    root = Path(data.pop("root", path.parent if path.exists() else PROJECT_ROOT))
    try:
        return Config(root=root.resolve(), **data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"{path}: {problems}") from exc


def secret_values() -> list[str]:
    """The values of the secrets that are set (longest first, so no value is masked in part)."""
    values = {os.environ.get(env, "").strip() for env in SECRET_ENV.values()}
    return sorted((v for v in values if v), key=len, reverse=True)


MASK = "***"


def mask_secrets(text: str) -> str:
    """``text`` with every set secret's value replaced by ***: the one redaction of every text that
    is shown or kept (errors, log lines, summaries, artifacts; rows written to the store go through
    ``mask_frame``, the same rule over a frame's text columns)."""
    for value in secret_values():
        text = text.replace(value, MASK)
    return text


def mask_secret_bytes(data: bytes) -> bytes:
    """``mask_secrets`` for a response body as it arrived (a server may echo a key: NCBI's
    "API key invalid" answer repeats it)."""
    for value in secret_values():
        data = data.replace(value.encode(), MASK.encode())
    return data


def mask_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``mask_secrets`` applied to every text column (vectorised)."""
    import polars as pl

    values = secret_values()
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    if not values or not text:
        return frame
    masked_columns = []
    for name in text:
        column = pl.col(name)
        for value in values:
            column = column.str.replace_all(value, MASK, literal=True)
        masked_columns.append(column)
    return frame.with_columns(masked_columns)


def _mask_values(value: Any) -> Any:
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {k: _mask_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_values(v) for v in value]
    return value


def masked(config: Config) -> dict:
    """The effective config as a dict, with each secret shown only as set/unset (and masked
    wherever its value was copied into a setting, such as a URL)."""
    data = _mask_values(config.model_dump(mode="json"))
    data["secrets"] = {env: ("***set***" if secret(name) else "(unset)") for name, env in SECRET_ENV.items()}
    return data
