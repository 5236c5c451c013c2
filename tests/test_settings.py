import pytest

from assistant.errors import ConfigError
from assistant.settings import Settings, load_settings


def test_defaults_are_valid_and_paths_expanded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.models.generator == "smollm2-135m-instruct"
    assert "~" not in str(s.paths.model_cache)
    assert s.store_path == s.paths.data_dir / "qdrant"


def test_yaml_then_env_precedence(tmp_path, monkeypatch):
    f = tmp_path / "lorag.yaml"
    f.write_text("models:\n  device: cpu\n  max_new_tokens: 50\nretrieval:\n  top_k: 3\n")
    monkeypatch.setenv("LORAG_RETRIEVAL__TOP_K", "7")
    s = load_settings(f)
    assert (s.models.device, s.models.max_new_tokens, s.retrieval.top_k) == ("cpu", 50, 7)


def test_lorag_yaml_in_cwd_and_lorag_config(tmp_path, monkeypatch):
    (tmp_path / "lorag.yaml").write_text("retrieval:\n  top_k: 9\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings().retrieval.top_k == 9
    other = tmp_path / "other.yaml"
    other.write_text("retrieval:\n  top_k: 2\n")
    monkeypatch.setenv("LORAG_CONFIG", str(other))
    assert load_settings().retrieval.top_k == 2


def test_every_problem_is_listed_in_one_error(tmp_path):
    f = tmp_path / "lorag.yaml"
    f.write_text(
        "models:\n  device: gpu\n  colour: blue\nretrieval:\n  top_k: 0\ningest:\n  chunk_tokens: 100\n  "
        "chunk_overlap: 100\nnope: 1\n"
    )
    with pytest.raises(ConfigError) as e:
        load_settings(f)
    msg = str(e.value)
    for needle in [
        "models.device",
        "(got 'gpu')",
        "models.colour: unknown setting",
        "retrieval.top_k",
        "ingest.chunk_overlap",
        "nope: unknown setting",
        str(f),
    ]:
        assert needle in msg, needle
    assert "5 problem(s)" in msg


def test_the_text_encoding_is_auto_or_a_codec_python_knows(tmp_path):
    f = tmp_path / "lorag.yaml"
    f.write_text("ingest:\n  text_encoding: CP1250\n")
    assert load_settings(f).ingest.text_encoding == "cp1250"
    f.write_text("ingest:\n  text_encoding: Auto\n")
    assert load_settings(f).ingest.text_encoding == "auto"
    f.write_text("ingest:\n  text_encoding: windows-1250x\n")
    with pytest.raises(ConfigError) as e:
        load_settings(f)
    assert "ingest.text_encoding" in str(e.value) and "'windows-1250x' is no text encoding Python knows" in str(e.value)
    for codec, why in (
        ("base64", "is no text encoding"),
        ("rot13", "is no text encoding"),
        ("utf-16", "byte order mark"),
    ):
        f.write_text(f"ingest:\n  text_encoding: {codec}\n")
        with pytest.raises(ConfigError, match=why):
            load_settings(f)


def test_a_misspelt_or_misplaced_setting_gets_the_nearest_known_name(tmp_path):
    """A misspelt name gets the nearest one of its section; a name of another section (or written at the top
    level) gets that section's."""
    f = tmp_path / "lorag.yaml"
    f.write_text(
        "retrieval:\n  min_relevence: 0.3\nmodels:\n  generatr: x\n  colour: blue\nretreival:\n  top_k: 2\n"
        "data_dir: /tmp/x\ningest:\n  top_k: 3\n"
    )
    with pytest.raises(ConfigError) as e:
        load_settings(f)
    msg = str(e.value)
    assert "retrieval.min_relevence: unknown setting (did you mean retrieval.min_relevance?)" in msg
    assert "models.generatr: unknown setting (did you mean models.generator?)" in msg
    assert "models.colour: unknown setting\n" in msg + "\n"  # nothing close: no guess
    assert "retreival: unknown setting (did you mean retrieval?)" in msg
    assert "data_dir: unknown setting (did you mean paths.data_dir?)" in msg
    assert "ingest.top_k: unknown setting (did you mean retrieval.top_k?)" in msg


def test_unknown_env_name_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORAG_RETRIVAL__TOP_K", "3")
    with pytest.raises(ConfigError, match="LORAG_RETRIVAL__TOP_K: unknown setting"):
        load_settings()


def test_a_bad_value_from_the_environment_is_named_by_its_variable(tmp_path, monkeypatch):
    """A value set by a LORAG_* variable (for its setting, or in a section's JSON) is named by that variable too;
    a problem of the file is listed as before, with its "did you mean"."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORAG_RETRIEVAL__TOP_K", "abc")
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert "  - retrieval.top_k (from LORAG_RETRIEVAL__TOP_K): Input should be a valid integer" in str(e.value)
    assert str(e.value).endswith("(got 'abc')")
    f = tmp_path / "lorag.yaml"
    f.write_text("retrieval:\n  top_k: 0\n  min_relevence: 0.3\n")
    monkeypatch.delenv("LORAG_RETRIEVAL__TOP_K")
    monkeypatch.setenv("LORAG_RETRIEVAL__TOPK", "3")
    monkeypatch.setenv("LORAG_INGEST", '{"chunk_tokens": "many"}')
    monkeypatch.setenv("lorag_models__max_new_tokens", "0")  # read in any case
    with pytest.raises(ConfigError) as e:
        load_settings(f)
    lines = str(e.value).splitlines()[1:]
    assert "  - retrieval.top_k: Input should be greater than or equal to 1 (got 0)" in lines  # the file's
    assert "  - retrieval.min_relevence: unknown setting (did you mean retrieval.min_relevance?)" in lines
    assert "  - retrieval.topk (from LORAG_RETRIEVAL__TOPK): unknown setting (did you mean retrieval.top_k?)" in lines
    assert any(x.startswith("  - ingest.chunk_tokens (from LORAG_INGEST): ") for x in lines), lines
    assert any(x.startswith("  - models.max_new_tokens (from lorag_models__max_new_tokens): ") for x in lines), lines
    assert len(lines) == 5, lines
    monkeypatch.setenv("LORAG_RETRIEVAL", '{"min_relevance": 0.3}')  # a section's JSON without the file's top_k
    monkeypatch.delenv("LORAG_RETRIEVAL__TOPK")
    with pytest.raises(ConfigError) as e:
        load_settings(f)
    assert "  - retrieval.top_k: Input should be greater than or equal to 1 (got 0)" in str(e.value).splitlines()


def test_a_bad_union_typed_value_from_the_environment_is_named_by_its_variable(tmp_path, monkeypatch):
    """A union-typed setting's errors carry the member tried after its name (`extra.a.int`); the variable that set
    the setting, or the section's JSON that holds it, is named all the same, and the file's value is not."""
    from pydantic import BaseModel, ConfigDict, Field

    import assistant.settings as settings_module

    class Extra(BaseModel):
        model_config = ConfigDict(extra="forbid")
        a: int | float = 1
        b: str | list[str] = "x"

    class WithUnions(Settings):
        extra: Extra = Field(default_factory=Extra)

    monkeypatch.setattr(settings_module, "Settings", WithUnions)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORAG_EXTRA__A", "z")
    monkeypatch.setenv("LORAG_EXTRA__B", '["a", 1]')
    with pytest.raises(ConfigError) as e:
        settings_module.load_settings()
    lines = str(e.value).splitlines()[1:]
    assert [x.split(":")[0] for x in lines] == [
        "  - extra.a.int (from LORAG_EXTRA__A)",
        "  - extra.a.float (from LORAG_EXTRA__A)",
        "  - extra.b.str (from LORAG_EXTRA__B)",
        "  - extra.b.list[str].1 (from LORAG_EXTRA__B)",
    ], lines
    monkeypatch.delenv("LORAG_EXTRA__A")
    monkeypatch.delenv("LORAG_EXTRA__B")
    monkeypatch.setenv("LORAG_EXTRA", '{"b": 5}')
    f = tmp_path / "lorag.yaml"
    f.write_text("extra:\n  a: z\n")
    with pytest.raises(ConfigError) as e:
        settings_module.load_settings(f)
    lines = str(e.value).splitlines()[1:]
    assert [x.split(":")[0] for x in lines] == [
        "  - extra.a.int",
        "  - extra.a.float",
        "  - extra.b.str (from LORAG_EXTRA)",
        "  - extra.b.list[str] (from LORAG_EXTRA)",
    ], lines


def test_bad_yaml_and_missing_file(tmp_path):
    f = tmp_path / "lorag.yaml"
    f.write_text("models: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(f)
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.yaml")


def test_secrets_are_masked():
    s = Settings(qdrant={"api_key": "s3cret"})
    assert "s3cret" not in str(s.public_dict())


def test_the_count_matches_the_problems_listed(tmp_path, monkeypatch):
    """File, environment and cross-field problems are all counted and listed: the overlap is checked
    against the chunk size given even when that size is itself invalid."""
    f = tmp_path / "lorag.yaml"
    f.write_text("ingest:\n  chunk_tokens: 5\n  chunk_overlap: 500\nretrieval:\n  top_k: 0\n")
    monkeypatch.setenv("LORAG_RETRIVAL__TOP_K", "3")
    with pytest.raises(ConfigError) as e:
        load_settings(f)
    msg = str(e.value)
    listed = [line for line in msg.splitlines() if line.startswith("  - ")]
    assert "4 problem(s)" in msg.splitlines()[0] and len(listed) == 4, msg
    assert "ingest.chunk_tokens: Input should be greater than or equal to 16 (got 5)" in msg
    assert "ingest.chunk_overlap: must be smaller than chunk_tokens (5) (got 500)" in msg
    assert "retrieval.top_k" in msg and "LORAG_RETRIVAL__TOP_K: unknown setting" in msg


def test_overlap_against_an_invalid_size_only_when_both_are_numbers():
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as e:
        Settings(ingest={"chunk_tokens": "many", "chunk_overlap": 10})
    assert [x["loc"] for x in e.value.errors()] == [("ingest", "chunk_tokens")]
    with pytest.raises(ValidationError) as e:
        Settings(ingest={"chunk_tokens": 9000, "chunk_overlap": 100})  # too large, but the overlap is fine
    assert [x["loc"] for x in e.value.errors()] == [("ingest", "chunk_tokens")]
    with pytest.raises(ValidationError) as e:
        Settings(ingest={"chunk_tokens": "8", "chunk_overlap": "8"})  # environment values are strings
    assert [x["loc"] for x in e.value.errors()] == [("ingest", "chunk_tokens"), ("ingest", "chunk_overlap")]
