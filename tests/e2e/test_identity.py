import stat

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from peers.identity import peer_id


def test_init_creates_a_private_key_and_certificate(appliances):
    alpha = appliances("alpha", listen="127.0.0.1:7001")
    key_file, cert_file = alpha.home / "peer.key", alpha.home / "peer.crt"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((alpha.home / "secret_key").stat().st_mode) == 0o600

    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert cert.public_key() == key.public_key()
    cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes)

    # `realize id` prints the key in its readable form.
    assert peer_id.decode(alpha.peer_id) == raw


def test_init_again_changes_nothing(appliances):
    alpha = appliances("alpha", listen="127.0.0.1:7001")
    files = {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in alpha.home.iterdir() if p.is_file()
    }
    first_id = alpha.peer_id

    again = alpha.run("init", "--name", "alpha", "--listen", "127.0.0.1:7001")
    assert "nothing changed" in again.stdout
    assert "Web login" not in again.stdout
    assert {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in alpha.home.iterdir() if p.is_file()
    } == files
    assert alpha.peer_id == first_id


def test_init_prints_the_first_admin_login_once(tmp_path, appliances):
    alpha = appliances("alpha", init=False)
    first = alpha.run("init", "--name", "alpha")
    assert "Web login: admin / " in first.stdout
    assert "Web login" not in alpha.run("init", "--name", "alpha").stdout


def test_init_refuses_a_different_name(appliances):
    alpha = appliances("alpha")
    result = alpha.run("init", "--name", "omega", check=False)
    assert result.returncode != 0
    assert (
        result.stderr.strip() == "realize: error: this appliance is already initialised as 'alpha'"
    )
    assert "alpha" in alpha.run("status").stdout


def test_id_before_init_is_a_clear_error(appliances):
    fresh = appliances("fresh", init=False)
    result = fresh.run("id", check=False)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and "realize init" in result.stderr
    assert "Traceback" not in result.stderr
