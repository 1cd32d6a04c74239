"""What ./start.sh runs besides docker: small programs, each runnable on its own as a script.

readiness.py and localenv.py need only the standard library (Python 3.8+), on the host or inside a
container; models.py runs inside the backend image (it uses qa_api). start.sh runs each as a file
(`python deploy/qa_stack/readiness.py URL`, or fed on stdin to the container's python), so they
import nothing from each other.
"""
