"""Stand-in for the get-pip.py that ansible-test downloads from ci-files.testing.ansible.com (out of
reach here: only PyPI is). Same contract: run in a new virtual environment without pip, with
get-pip's arguments (``--disable-pip-version-check pip==24.2 --no-setuptools --no-wheel``); installs
pip from the interpreter's own ensurepip, then the named packages from PyPI. `make sanity` puts it
in ansible-test's cache under the name ansible-test looks for.
"""

import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}  # get-pip's own flags: pip install has no such options

subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
sys.exit(subprocess.run([sys.executable, "-m", "pip", "install", *args], check=False).returncode)
