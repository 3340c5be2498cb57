"""Every label and tag key the labs put on what they make, and why.

Docker labels (containers, networks, volumes, images, swarm services, secrets and nodes):

- :data:`LAB` ``labkit.lab=<lab>``: made by that lab; its cleanup, ``make clean`` and the
  grader remove everything that carries it.
- :data:`BUILT_BY` ``labkit.built-by=<kernel id>``: on images, the id of the Python process (a
  notebook's kernel, or a grading run) that built it. A check trusts a ``labkit/…`` image only if
  this process built it, so an image left by an earlier run cannot pass for the student's work.
- :data:`STANDIN`, :data:`STANDIN_OF`, :data:`STANDIN_RECIPE`, :data:`STANDIN_CA`: on base
  images built offline (``labkit images``): a stand-in, of which official image, from which
  recipe, carrying which CA bundle; a stand-in whose recipe or CA changed is rebuilt.
- :data:`VERTEX_SERVER`, :data:`VERTEX_ENDPOINT`, :data:`VERTEX_DEPLOYED_MODEL`: on the
  containers the Vertex stand-in runs for a deployed model (environments/vertex/standin.py runs
  without labkit and spells them itself; a test keeps both equal).

Cloud tags (AWS) and labels (GCP), on every resource a lab creates on an emulator or an account:

- :data:`LAB_TAG` ``labkit-lab=<lab>`` and :data:`RUN_TAG` ``labkit-run=<run id>``: which lab and
  which run made it; the lab's cleanup and ``labkit sweep`` find resources by them.
"""

LAB = "labkit.lab"
BUILT_BY = "labkit.built-by"

STANDIN = "labkit.standin"
STANDIN_OF = "labkit.standin.of"
STANDIN_RECIPE = "labkit.standin.recipe"
STANDIN_CA = "labkit.standin.ca"

VERTEX_SERVER = "labkit.vertex"
VERTEX_ENDPOINT = "labkit.vertex.endpoint"
VERTEX_DEPLOYED_MODEL = "labkit.vertex.deployed-model"

LAB_TAG = "labkit-lab"
RUN_TAG = "labkit-run"

#: The environment variable that carries a run's id (``labkit grade`` sets it, so that both of its
#: kernels stamp what they make with one :data:`BUILT_BY` and one :data:`RUN_TAG`).
RUN_ID_ENV = "LABKIT_RUN_ID"
