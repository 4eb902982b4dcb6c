"""ZEAL as a Label Studio ML backend (`zeal serve-ls`): Label Studio asks for predictions on the
video tasks of a project whose labeling config has a <Video> and a <TimelineLabels>; ZEAL answers
with timeline regions in the config's own label names.

config.py  parse a labeling config (video key, frame rate, label names)
client.py  fetch a task's video from Label Studio (URL + API key, legacy or personal access token)
backend.py the protocol's logic: setup, predict, questions per label, background scoring
server.py  the HTTP routes (/health, /setup, /predict, /versions, /webhook) on Starlette + uvicorn

Importing this package is cheap; the web framework loads only in server.py.
"""
