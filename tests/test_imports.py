"""``import nbdistill`` is light: the Jupyter server extension must not pay for torch and Lightning."""

import subprocess
import sys


def test_the_package_and_the_server_extension_import_without_torch():
    code = (
        "import sys, nbdistill, nbdistill.core, nbdistill.server.handlers, nbdistill.runs\n"
        "heavy = sorted(m for m in ('torch', 'pytorch_lightning', 'lightning', 'matplotlib') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing the server extension loaded {out.stdout.strip()}"


def test_every_public_name_and_subpackage_resolves_in_a_fresh_process():
    code = (
        "import nbdistill as nd\n"
        "assert nd.core.DistillModule and nd.widgets.views and nd.families.kd and nd.data.Digits\n"
        "ns = {}\n"
        "exec('from nbdistill import *', ns)\n"
        "missing = [n for n in nd.__all__ if n not in ns]\n"
        "assert not missing, missing\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


def test_the_lazy_names_resolve_to_the_real_objects():
    import nbdistill as nd
    from nbdistill.core import DistillModule
    from nbdistill.core.fit import fit
    from nbdistill.core.module import DistillModule as direct

    assert nd.fit is fit and DistillModule is direct
    assert {"fit", "panel", "methods", "data"} <= set(dir(nd))
    try:
        getattr(nd, "no_such_name")  # noqa: B009 (the attribute access is what is tested)
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
