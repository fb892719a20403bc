'''Versioned prompt templates kept as files, and the engine of the ``prompt`` fixture.

A template is a TOML file in a prompts folder; its name is the file's stem::

    # prompts/support_qa.toml
    version = "3"                  # required, a string: change it when the prompt changes
    description = "Grounded support answers"
    temperature = 0.0              # optional defaults: temperature, max_tokens, top_p, stop, seed
    max_tokens = 128
    system = "You are a support agent. Answer using only the context."
    template = """
    Context:
    {{ context }}

    Question: {{ question }}"""

    [[examples]]                   # few-shot pairs, sent before the final user message
    user = "Question: How do I reset my password?"
    assistant = "Use the 'Forgot password' link on the sign-in page."

Instead of ``system``/``template``, ``messages = [{role = "system", content =
"..."}, {role = "user", content = "..."}]`` gives the whole conversation
(``examples`` then go just before its last user message). ``name`` may be set
but must equal the file's stem. Any other key is an error, so typos surface.

Rendering uses Jinja2 in a sandbox, with every variable required (a missing
one is an error naming it) and no HTML escaping. Block tags do not leave blank
lines (``trim_blocks``/``lstrip_blocks``), and the whitespace around each
message is trimmed, so the TOML layout does not change the prompt.

Retrieved context renders sensibly:

- ``{{ context | chunks }}`` joins a list of chunks with blank lines; a chunk
  is a string, an object with a ``.text`` attribute, or a mapping with a
  ``"text"`` key. ``chunks(numbered=true)`` prefixes ``[1]``, ``[2]``, ...;
  ``chunks(sep="\\n---\\n")`` changes the separator.
- A bare ``{{ context }}`` holding such a list renders the same way, and an
  object with a ``.text`` attribute renders as its text; ``{{ chunk.text }}``
  works inside loops.

Every template has a ``hash`` over its canonical content (name, version,
messages, examples, parameters), not its path or TOML formatting; rendering
records ``name``, ``version`` and ``hash`` on the running test case, so the
hash follows every result.

Import this module lazily: the plugin imports it inside the ``prompt``
fixture, never at start-up.
'''

from pytest_llmops.prompts._jinja import chunks
from pytest_llmops.prompts._library import SETTING, PromptLibrary
from pytest_llmops.prompts._loader import ALLOWED_KEYS, PARAM_KEYS, load_template, template_from_string
from pytest_llmops.prompts._template import (
    Example,
    MessageTemplate,
    PromptError,
    PromptTemplate,
    RenderedPrompt,
    messages_hash,
)

__all__ = [
    "ALLOWED_KEYS",
    "PARAM_KEYS",
    "SETTING",
    "Example",
    "MessageTemplate",
    "PromptError",
    "PromptLibrary",
    "PromptTemplate",
    "RenderedPrompt",
    "chunks",
    "load_template",
    "messages_hash",
    "template_from_string",
]
