"""Issue 17.1: path-taking tools attacked through symlinks, check-then-open swaps, URIs and archives.

Every test confines the tools to `<tmp>/root`, plants a secret in `<tmp>/outside`, performs the
attack through Tool.invoke from Lua, asserts it fails without reading or touching the outside,
and then shows the same runtime still serving an ordinary request.
"""

from __future__ import annotations

import io
import sqlite3
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from llmspell.tools import sandbox as sandbox_mod
from tests.tools.conftest import invoke, invoke_error

SECRET = "TOP-SECRET-OUTSIDE"


@pytest.fixture
def box(tmp_path: Path, make_rt: Callable[[str], Any]) -> Iterator[tuple[Any, Path, Path]]:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (root / "ok.txt").write_text("fine")
    rt = make_rt(f'[tools.file_operations]\nallowed_paths = ["{root}"]\n'
                 "[tools.database_connector]\nallow_write = true\n")
    yield rt, root, outside


def still_serving(rt: Any, root: Path) -> None:
    """The runtime answers an ordinary request after the attack."""
    assert invoke(rt, "file_operations", f'{{operation = "read", path = "{root}/ok.txt"}}')["text"] == "fine"


def test_symlink_inside_root_to_outside_is_refused_everywhere(box: tuple[Any, Path, Path]) -> None:
    rt, root, outside = box
    (root / "link.txt").symlink_to(outside / "secret.txt")
    (root / "tree").mkdir()
    (root / "tree" / "a.txt").write_text("inside")
    (root / "tree" / "out").symlink_to(outside)
    msg = invoke_error(rt, "file_operations", f'{{operation = "read", path = "{root}/link.txt"}}')
    assert "outside the allowed paths" in msg and SECRET not in msg
    # copy of the link, and of a tree holding a link to outside: refused, nothing written
    assert "outside the allowed paths" in invoke_error(
        rt, "file_operations", f'{{operation = "copy", source_path = "{root}/link.txt", target_path = "{root}/c.txt"}}')
    msg = invoke_error(rt, "file_operations",
                       f'{{operation = "copy", source_path = "{root}/tree", target_path = "{root}/tree2"}}')
    assert "is a symlink to" in msg and "refused" in msg and not (root / "tree2").exists()
    # recursive search does not follow the link; the secret is never in the result
    found = invoke(rt, "file_search", f'{{pattern = "SECRET", path = "{root}"}}')["result"]
    assert found["total_matches"] == 0 and SECRET not in repr(found)
    assert {s["file"] for s in found["skipped"]} == {f"{root}/link.txt", f"{root}/tree/out"}
    # recursive listing reports the link as a link and does not descend
    ls = invoke(rt, "file_operations", f'{{operation = "list_dir", path = "{root}", recursive = true}}')["result"]
    kinds = {e["name"]: e["type"] for e in ls["entries"]}
    assert kinds["tree/out"] == "symlink" and "tree/out/secret.txt" not in kinds
    # archiving a tree with a link is refused; archiving the link itself is refused by the check
    assert "symlink" in invoke_error(rt, "archive_handler",
                                     f'{{operation = "create", path = "{root}/a.zip", input = {{"{root}/tree"}}}}')
    assert "outside the allowed paths" in invoke_error(
        rt, "archive_handler", f'{{operation = "create", path = "{root}/b.zip", input = {{"{root}/link.txt"}}}}')
    assert not (root / "a.zip").exists() and not (root / "b.zip").exists()
    still_serving(rt, root)


def test_symlink_inside_root_to_inside_is_copied_as_a_link(box: tuple[Any, Path, Path]) -> None:
    rt, root, _ = box
    (root / "tree").mkdir()
    (root / "tree" / "a.txt").write_text("A")
    (root / "tree" / "alias").symlink_to(root / "ok.txt")
    invoke(rt, "file_operations", f'{{operation = "copy", source_path = "{root}/tree", target_path = "{root}/t2"}}')
    assert (root / "t2" / "a.txt").read_text() == "A"
    assert (root / "t2" / "alias").is_symlink() and (root / "t2" / "alias").resolve() == root / "ok.txt"


@pytest.mark.parametrize("op", ["read", "write", "append", "copy", "delete", "list_dir", "search", "db"])
def test_component_swapped_for_symlink_between_check_and_open_is_refused(
        box: tuple[Any, Path, Path], monkeypatch: pytest.MonkeyPatch, op: str) -> None:
    rt, root, outside = box
    d = root / "d"
    d.mkdir()
    (d / "secret.txt").write_text("decoy")
    db = outside / "secret.txt"
    if op == "db":
        (d / "secret.txt").unlink()
        con = sqlite3.connect(d / "secret.txt")
        con.execute("create table t (v text)")
        con.commit()
        con.close()
        db.unlink()
        con = sqlite3.connect(db)
        con.execute("create table t (v text)")
        con.execute(f"insert into t values ('{SECRET}')")
        con.commit()
        con.close()
    before = db.read_bytes()
    swaps: list[Path] = []

    def swap(real: Path) -> None:
        """Between the check and the open, replace root/d with a symlink to outside (once)."""
        if swaps or d not in (real, *real.parents):
            return
        d.rename(root / "d.orig")
        d.symlink_to(outside)
        swaps.append(real)

    monkeypatch.setattr(sandbox_mod, "between_check_and_use", swap)
    target = f"{d}/secret.txt"
    if op == "read":
        msg = invoke_error(rt, "file_operations", f'{{operation = "read", path = "{target}"}}')
    elif op == "write":
        out = invoke(rt, "file_operations", f'{{operation = "write", path = "{target}", input = "pwned"}}')
        assert out["success"] is False
        msg = out["text"]
    elif op == "append":
        out = invoke(rt, "file_operations", f'{{operation = "append", path = "{target}", input = "pwned"}}')
        assert out["success"] is False
        msg = out["text"]
    elif op == "copy":
        msg = invoke_error(rt, "file_operations",
                           f'{{operation = "copy", source_path = "{target}", target_path = "{root}/leak.txt"}}')
        assert not (root / "leak.txt").exists()
    elif op == "delete":
        msg = invoke_error(rt, "file_operations", f'{{operation = "delete", path = "{target}"}}')
    elif op == "list_dir":
        msg = invoke_error(rt, "file_operations", f'{{operation = "list_dir", path = "{d}"}}')
    elif op == "search":
        res = invoke(rt, "file_search", f'{{pattern = "SECRET", path = "{d}"}}')
        msg = repr(res["result"]) + repr(res.get("error"))
        assert res["result"]["total_matches"] == 0 if res.get("result") else True
    else:
        msg = invoke_error(rt, "database-connector", f'{{operation = "query", database = "{target}", '
                                                     'query = "select v from t"}')
    assert swaps, "the swap hook never ran: the test did not exercise the race"
    assert SECRET not in msg
    if op != "search":
        assert "symlink" in msg and "refused" in msg
    assert db.read_bytes() == before  # outside untouched
    assert (outside / "secret.txt").exists()
    monkeypatch.setattr(sandbox_mod, "between_check_and_use", None)
    still_serving(rt, root)


def test_swap_race_loop_never_leaks(box: tuple[Any, Path, Path]) -> None:
    """A thread flips root/d between a directory and a symlink to outside while reads run (bounded)."""
    import threading

    rt, root, outside = box
    real_dir = root / "real"
    real_dir.mkdir()
    (real_dir / "secret.txt").write_text("decoy")
    d = root / "d"
    stop = threading.Event()

    def flipper() -> None:
        for i in range(20000):
            if stop.is_set():
                return
            tmp = root / f"tmp{i}"
            if i % 2:
                tmp.symlink_to(outside)
            else:
                tmp.symlink_to(real_dir)
            tmp.replace(d)

    d.symlink_to(real_dir)
    t = threading.Thread(target=flipper)
    t.start()
    texts: list[str] = []
    try:
        for _ in range(200):
            try:
                texts.append(invoke(rt, "file_operations", f'{{operation = "read", path = "{d}/secret.txt"}}')["text"])
            except Exception as e:  # noqa: BLE001 - a refusal is the expected outcome half the time
                texts.append(str(e))
    finally:
        stop.set()
        t.join()
    assert all(SECRET not in x for x in texts)
    assert any(x == "decoy" for x in texts) or any("outside the allowed paths" in x for x in texts)
    still_serving(rt, root)


@pytest.mark.parametrize("database", [
    "{root}/%2e%2e/outside/x.db",
    "{root}/x.db?mode=rwc&",
    "file:{root}/x.db",
    "file:{root}/x.db?mode=rwc",
    "sqlite://{root}/x.db?mode=rw",
    "{root}/x.db#frag",
])
def test_database_refuses_uris(box: tuple[Any, Path, Path], database: str) -> None:
    rt, root, _ = box
    con = sqlite3.connect(root / "x.db")
    con.execute("create table t (v)")
    con.commit()
    con.close()
    before = (root / "x.db").read_bytes()
    msg = invoke_error(rt, "database-connector", f'{{operation = "query", database = "{database.format(root=root)}", '
                                                 'query = "insert into t values (1)", query_type = "read"}')
    assert "plain file path, not a URI" in msg
    assert (root / "x.db").read_bytes() == before
    assert not (root.parent / "outside" / "x.db").exists()
    still_serving(rt, root)


def test_database_read_only_is_really_read_only(box: tuple[Any, Path, Path]) -> None:
    rt, root, outside = box
    db = root / "x.db"
    con = sqlite3.connect(db)
    con.execute("create table t (v)")
    con.execute("insert into t values (1)")
    con.commit()
    con.close()
    before = db.read_bytes()
    q = f'{{operation = "query", database = "{db}", query_type = "read", query = '
    for sql in ("insert into t values (2)", "delete from t", "PRAGMA query_only = OFF", "create table u (x)",
                f"ATTACH DATABASE '{outside}/new.db' AS o", f"VACUUM INTO '{outside}/copy.db'"):
        msg = invoke_error(rt, "database-connector", q + f'"{sql}"}}')
        assert "query failed" in msg, (sql, msg)
    assert db.read_bytes() == before
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    # write mode (allowed in this config) still cannot ATTACH a file outside the root
    msg = invoke_error(rt, "database-connector", f'{{operation = "query", database = "{db}", query_type = "write", '
                                                 f"query = \"ATTACH DATABASE '{outside}/w.db' AS o\"}}")
    assert "query failed" in msg and not (outside / "w.db").exists()
    r = invoke(rt, "database-connector", f'{{operation = "query", database = "{db}", query = "select v from t"}}')
    assert r["result"]["rows"] == [[1]]
    w = invoke(rt, "database-connector", f'{{operation = "query", database = "{db}", query_type = "write", '
                                         'query = "insert into t values (3)"}')
    assert w["result"]["row_count"] == 1


def test_database_through_symlink_to_outside_is_refused(box: tuple[Any, Path, Path]) -> None:
    rt, root, outside = box
    con = sqlite3.connect(outside / "o.db")
    con.execute("create table t (v)")
    con.commit()
    con.close()
    (root / "o.db").symlink_to(outside / "o.db")
    msg = invoke_error(rt, "database-connector", f'{{operation = "schema", database = "{root}/o.db"}}')
    assert "outside the allowed paths" in msg
    still_serving(rt, root)


def _zip(entries: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, data in entries.items():
            z.writestr(n, data)
        for n, target in (links or {}).items():
            info = zipfile.ZipInfo(n)
            info.external_attr = (0o120777 << 16)
            z.writestr(info, target)
    return buf.getvalue()


def test_archive_extract_attacks_are_refused(box: tuple[Any, Path, Path]) -> None:
    rt, root, outside = box
    (root / "dotdot.zip").write_bytes(_zip({"../outside/secret.txt": b"pwned"}))
    (root / "abs.zip").write_bytes(_zip({f"{outside}/secret.txt": b"pwned"}))
    (root / "link.zip").write_bytes(_zip({}, {"l": str(outside)}))
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w") as t:
        info = tarfile.TarInfo("l")
        info.type = tarfile.SYMTYPE
        info.linkname = str(outside)
        t.addfile(info)
        data = b"pwned"
        f = tarfile.TarInfo("l/secret.txt")
        f.size = len(data)
        t.addfile(f, io.BytesIO(data))
    (root / "link.tar").write_bytes(tbuf.getvalue())
    for arc in ("dotdot.zip", "abs.zip", "link.zip", "link.tar"):
        msg = invoke_error(rt, "archive_handler",
                           f'{{operation = "extract", path = "{root}/{arc}", target_path = "{root}/x"}}')
        assert "refused" in msg, (arc, msg)
    # a symlink planted in the target directory is not followed by extraction
    (root / "t").mkdir()
    (root / "t" / "sub").symlink_to(outside)
    (root / "plant.zip").write_bytes(_zip({"sub/secret.txt": b"pwned"}))
    msg = invoke_error(rt, "archive_handler",
                       f'{{operation = "extract", path = "{root}/plant.zip", target_path = "{root}/t"}}')
    assert "outside the allowed paths" in msg or "symlink" in msg
    assert (outside / "secret.txt").read_text() == SECRET
    still_serving(rt, root)


def test_other_path_tools_use_the_sandbox(box: tuple[Any, Path, Path]) -> None:
    rt, root, outside = box
    (root / "link.txt").symlink_to(outside / "secret.txt")
    for tool, params in (("file_converter", f'{{operation = "line_endings", path = "{root}/link.txt"}}'),
                         ("file_converter", f'{{operation = "line_endings", path = "{root}/ok.txt", '
                                            f'target_path = "{outside}/w.txt"}}'),
                         ("hash_calculator", f'{{operation = "hash", input_type = "file", input = "{root}/link.txt"}}'),
                         ("base64_encoder", f'{{operation = "encode", input_file = "{root}/link.txt"}}'),
                         ("base64_encoder", f'{{operation = "encode", input = "x", output_file = "{outside}/w.txt"}}'),
                         ("diff_calculator", f'{{type = "text", old_file = "{root}/link.txt", new_text = "x"}}'),
                         ("image_processor", f'{{operation = "metadata", file_path = "{root}/link.txt"}}'),
                         ("audio_processor", f'{{operation = "detect", file_path = "{root}/link.txt"}}'),
                         ("video_processor", f'{{operation = "detect", file_path = "{root}/link.txt"}}'),
                         ("pdf-processor", f'{{input = "{root}/link.txt"}}')):
        msg = invoke_error(rt, tool, params)
        assert "outside the allowed paths" in msg and SECRET not in msg, (tool, msg)
    assert not (outside / "w.txt").exists()
    still_serving(rt, root)


def test_default_roots_are_the_spec_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    monkeypatch.chdir(tmp_path)
    sb = sandbox_mod.Sandbox.from_config(None)
    assert set(sb.roots) == {str(tmp_path.resolve()), "/tmp", str(Path(tempfile.gettempdir()).resolve())}


def test_database_swapped_after_the_pinned_open_is_refused(box: tuple[Any, Path, Path],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The file SQLite opens must be the file the sandbox pinned: a swap just before connect is caught."""
    from llmspell.tools import data as data_mod

    rt, root, outside = box
    db = root / "x.db"
    for p, v in ((db, "inside"), (outside / "o.db", SECRET)):
        con = sqlite3.connect(p)
        con.execute("create table t (v text)")
        con.execute(f"insert into t values ('{v}')")
        con.commit()
        con.close()
    real_fds = data_mod._open_fds
    swapped: list[bool] = []

    def swap_then_list() -> Any:
        if not swapped:  # first call: after the pinned open, before sqlite3.connect
            db.rename(root / "x.orig")
            db.symlink_to(outside / "o.db")
            swapped.append(True)
        return real_fds()

    monkeypatch.setattr(data_mod, "_open_fds", swap_then_list)
    msg = invoke_error(rt, "database-connector", f'{{operation = "query", database = "{db}", query = "select v from t"}}')
    assert swapped and "changed between the sandbox check and SQLite's open; refused" in msg and SECRET not in msg
    monkeypatch.setattr(data_mod, "_open_fds", real_fds)
    db.unlink()
    (root / "x.orig").rename(db)
    r = invoke(rt, "database-connector", f'{{operation = "query", database = "{db}", query = "select v from t"}}')
    assert r["result"]["rows"] == [["inside"]]


def test_archive_bombs_are_refused_before_writing(tmp_path: Path, make_rt: Callable[[str], Any]) -> None:
    """An archive that expands past max_extract_size or holds more than max_extract_entries writes nothing."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.txt").write_text("fine")
    rt = make_rt(f'[tools.file_operations]\nallowed_paths = ["{root}"]\n'
                 "[tools.archive_handler]\nmax_extract_size = 2000000\nmax_extract_entries = 10\n")
    big = b"\0" * 900_000  # deflates to about 1 KB each: 2.7 MB from a tiny file
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(3):
            z.writestr(f"b{i}.bin", big)
    (root / "bomb.zip").write_bytes(zbuf.getvalue())
    (root / "many.zip").write_bytes(_zip({f"f{i}.txt": b"x" for i in range(11)}))
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w:gz") as t:
        for i in range(3):
            info = tarfile.TarInfo(f"t{i}.bin")
            info.size = len(big)
            t.addfile(info, io.BytesIO(big))
    (root / "bomb.tar.gz").write_bytes(tbuf.getvalue())
    assert (root / "bomb.zip").stat().st_size < 20_000
    for arc, word in (("bomb.zip", "max_extract_size"), ("many.zip", "max_extract_entries"),
                      ("bomb.tar.gz", "max_extract_size")):
        msg = invoke_error(rt, "archive_handler",
                           f'{{operation = "extract", path = "{root}/{arc}", target_path = "{root}/out"}}')
        assert word in msg and "refused before writing" in msg, (arc, msg)
        assert not (root / "out").exists()
    (root / "fits.zip").write_bytes(_zip({"a.txt": b"a", "b.txt": b"b"}))
    done = invoke(rt, "archive_handler", f'{{operation = "extract", path = "{root}/fits.zip", target_path = "{root}/out"}}')
    assert done["result"]["count"] == 2 and (root / "out" / "b.txt").read_bytes() == b"b"
    still_serving(rt, root)
