import sys
from pathlib import Path

# importlib mode does not put test folders on sys.path; the fixtures module lives here.
sys.path.insert(0, str(Path(__file__).parent))
