"""The fault harness, short: PostgreSQL restarted, a server killed, connections cut at COMMIT, a stalled lock holder,
a restore, each once while two servers and the command line write. Every acknowledged write is in PostgreSQL once,
no refused one is, every copy equals PostgreSQL, and no server is stuck."""

import json

import pytest

from bench import faults
from tests import postgres_server

pytestmark = [pytest.mark.slow, pytest.mark.one_mode]


@pytest.mark.skipif(postgres_server.binaries() is None, reason="PostgreSQL is not installed: no faults to inject")
def test_every_write_under_each_kind_of_fault_lands_once_or_not_at_all_and_says_which(tmp_path, capsys) -> None:
    figures = tmp_path / "faults.json"
    # the embedded file's faults have tests of their own (test_embedded_faults.py): here server mode alone
    args = ["--rounds", "1", "--gap", "1", "--import-gap", "12", "--kills", "0", "--fills", "0", "--seed", "7"]
    code = faults.main([*args, "--json", str(figures)])
    result = json.loads(figures.read_text())
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == faults.summary(result)
    assert result["faults"] == dict.fromkeys(faults.KINDS, 1)
    assert result["acknowledged"] > 50 and result["embedded"] is None
    assert (result["lost"], result["applied_twice"], result["refused_but_present"]) == (0, 0, 0), result
    assert result["copies_equal"] == {"server-1": True, "server-2": True}, result["copy_differences"]
    assert result["stuck_servers"] == 0
    assert code == 0
