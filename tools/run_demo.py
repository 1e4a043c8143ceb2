"""Run notebooks/demo.ipynb in a real kernel and print the thread table before
and after the kills.

    python tools/run_demo.py [--save executed.ipynb]

The kernel is this interpreter (so run it with the project's virtualenv), with
this checkout first on its path. Exits non-zero if any cell fails.
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "demo.ipynb")


def _text(output):
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return "\n".join(output.get("traceback", []))
    return output.get("data", {}).get("text/plain", "")


def run(path=NOTEBOOK, timeout=120):
    """Execute the notebook at `path`; return it with its outputs."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    # The kernel inherits this environment; jupyter_client runs the "python3"
    # kernel with this interpreter (sys.executable).
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, saved]))
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": os.path.dirname(path)}}).execute()
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    return nb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", metavar="PATH", help="write the executed notebook here")
    args = parser.parse_args(argv)
    started = time.monotonic()
    nb = run()
    for cell in nb.cells:
        source = cell.source.strip()
        if cell.cell_type != "code" or not source.startswith(("%threads", "%killthread")):
            continue
        heading = "after the kills" if "--text" in source else \
            "the kills" if source.startswith("%killthread") else "before the kills"
        print(f"== {heading}: {source}")
        print("".join(_text(o) for o in cell.outputs).rstrip() + "\n")
    if args.save:
        import nbformat
        nbformat.write(nb, args.save)
    print(f"demo ran in {time.monotonic() - started:.1f} s; every cell passed")


if __name__ == "__main__":
    sys.exit(main())
