"""How the command-line and MPI tests start `mpirun`, whichever MPI the build uses: Open MPI's mpirun or
MPICH's Hydra (mpirun.mpich), which differ in their options (--oversubscribe and -x VAR are Open MPI's; Hydra
passes the whole environment and runs more ranks than cores without being told), in the variable that holds a
rank's number (OMPI_COMM_WORLD_RANK, PMI_RANK) and in what they do when a rank exits non-zero. Imported by
tests/cli/clitest.py and tests/mpi/mpitest.py."""
import functools
import subprocess

RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK")  # the first one set names a process's rank
RANK_SHELL = "${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-${PMIX_RANK:-x}}}"  # the same, in a shell wrapper


@functools.lru_cache(maxsize=None)
def _version_text(mpirun):
    try:
        p = subprocess.run([mpirun, "--version"], capture_output=True, text=True, timeout=30)
        return p.stdout + p.stderr
    except (OSError, subprocess.TimeoutExpired):
        return ""


def flavor(mpirun):
    """"openmpi" or "mpich", from `mpirun --version`."""
    text = _version_text(mpirun)
    return "mpich" if "HYDRA" in text or "MPICH" in text else "openmpi"


def _hydra_loses_codes(mpirun):
    """Whether this is MPICH's Hydra before 4.2.3, whose proxy can report 0 for ranks that all exited non-zero
    after MPI_Finalize (pmodels/mpich#7057: it presets the others' status to 0 when the first one ends)."""
    if flavor(mpirun) != "mpich":
        return False
    for line in _version_text(mpirun).splitlines():
        if line.strip().startswith("Version:"):
            try:
                version = tuple(int(x) for x in line.split(":", 1)[1].strip().split(".")[:3])
            except ValueError:
                return True
            return version < (4, 2, 3)
    return True


def code_ok(mpirun, code, want):
    """Whether mpirun's exit code is what the ranks' exit codes make it: want (None: any failure). Hydra before
    4.2.3 may say 0 for ranks that all exited with the same non-zero code (see _hydra_loses_codes): the caller
    then checks what the ranks printed and wrote, which it does anyway."""
    if want is None:
        return code not in (0, None) or (code == 0 and _hydra_loses_codes(mpirun))
    return code == want or (want != 0 and code == 0 and _hydra_loses_codes(mpirun))


def command(mpirun, nprocs, pass_env=("OPENBLAS_NUM_THREADS",)):
    """The start of a command line that runs nprocs ranks (more than the cores, if need be) with the
    environment variables pass_env set in every rank as they are here."""
    if flavor(mpirun) == "mpich":
        return [mpirun, "-n", str(nprocs)]
    cmd = [mpirun, "-n", str(nprocs), "--oversubscribe"]
    for var in pass_env:
        cmd += ["-x", var]
    return cmd


def mpmd(mpirun, parts, pass_env=("OPENBLAS_NUM_THREADS",)):
    """A multiple-program command line: parts is a list of (nprocs, {VAR: value}, argv), each run with the
    variables pass_env as they are here plus its own. Open MPI: -x VAR=value; Hydra: -env VAR value."""
    cmd = [mpirun] if flavor(mpirun) == "mpich" else [mpirun, "--oversubscribe"]
    for i, (nprocs, env, argv) in enumerate(parts):
        if i:
            cmd.append(":")
        cmd += ["-n", str(nprocs)]
        for var, value in env.items():
            cmd += ["-env", var, value] if flavor(mpirun) == "mpich" else ["-x", "%s=%s" % (var, value)]
        if flavor(mpirun) != "mpich":
            for var in pass_env:
                cmd += ["-x", var]
        cmd += list(argv)
    return cmd


def keep_going_env(mpirun):
    """Variables under which mpirun lets the other ranks finish when one exits non-zero."""
    return {"OMPI_MCA_orte_abort_on_non_zero_status": "0"} if flavor(mpirun) == "openmpi" else {}


def rank_of(environ):
    """The rank named in a process's environment (a list of b"NAME=VALUE"), or None."""
    values = dict(v.split(b"=", 1) for v in environ if b"=" in v)
    for var in RANK_VARS:
        if var.encode() in values:
            try:
                return int(values[var.encode()])
            except ValueError:
                return None
    return None


HYDRA_NOTICE = ("YOUR APPLICATION TERMINATED WITH THE EXIT STRING", "This typically refers to a problem",
                "Please see the FAQ page")


def program_output(mpirun, text):
    """What the ranks wrote to stdout: Hydra adds a banner there when a rank dies (lines of '=' around "BAD
    TERMINATION OF ONE OF YOUR APPLICATION PROCESSES", then three lines about the exit string); Open MPI writes
    its notices to stderr."""
    if flavor(mpirun) != "mpich":
        return text
    return "".join(line for line in text.splitlines(True)
                   if not line.startswith("=") and not line.startswith(HYDRA_NOTICE))
