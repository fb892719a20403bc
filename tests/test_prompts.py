"""Prompt templates kept as TOML files: loading, rendering, hashing, errors, the library."""

from __future__ import annotations

import hashlib
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_llmops.case import CaseRecord, PromptUse, case_scope
from pytest_llmops.prompts import (
    PromptError,
    PromptLibrary,
    RenderedPrompt,
    load_template,
    messages_hash,
    template_from_string,
)

SUPPORT_QA = '''
version = "3"
description = "Grounded support answers"
temperature = 0
max_tokens = 128
system = "You are a support agent. Answer using only the context."
template = """
Context:
{{ context }}

Question: {{ question }}
"""

[[examples]]
user = "Question: How do I reset my password?"
assistant = "Use the 'Forgot password' link."
'''


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(PromptError) as info:
        load_template(path)
    return str(info.value)


@dataclass
class Chunk:
    text: str
    source: str


# --- rendering ---------------------------------------------------------------


def test_system_examples_and_template_become_messages_in_order(tmp_path):
    template = load_template(write(tmp_path, "support_qa", SUPPORT_QA))

    rendered = template.render(question="Can I change my email?", context="Emails are changed in Settings.")

    assert [m["role"] for m in rendered.messages] == ["system", "user", "assistant", "user"]
    assert rendered.messages[0]["content"] == "You are a support agent. Answer using only the context."
    assert rendered.messages[1]["content"] == "Question: How do I reset my password?"
    assert rendered.messages[3]["content"] == (
        "Context:\nEmails are changed in Settings.\n\nQuestion: Can I change my email?"
    )
    assert (template.name, template.version, template.description) == ("support_qa", "3", "Grounded support answers")
    assert template.variables == {"context", "question"}
    assert (rendered.template_name, rendered.template_version, rendered.template_hash) == (
        "support_qa",
        "3",
        template.hash,
    )


def test_default_params_come_with_the_rendered_prompt(tmp_path):
    path = write(
        tmp_path,
        "p",
        """
        version = "1"
        temperature = 0
        top_p = 1
        max_tokens = 64
        seed = 7
        stop = "###"
        template = "Hi"
    """,
    )
    rendered = load_template(path).render()

    assert dict(rendered.params) == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 64, "seed": 7, "stop": ["###"]}
    assert isinstance(rendered.params["temperature"], float)
    assert dict(load_template(write(tmp_path, "bare", 'version = "1"\ntemplate = "Hi"')).params) == {}


def test_changing_a_rendered_prompts_stop_list_leaves_the_template_alone():
    template = template_from_string("t", "Hi", stop=["\n"])
    template.render().params["stop"].append("###")
    assert template.render().params["stop"] == ["\n"]


def test_messages_form_gives_full_control_and_examples_go_before_the_last_user_message(tmp_path):
    path = write(
        tmp_path,
        "chat",
        """
        version = "1"
        messages = [
          {role = "system", content = "Be brief."},
          {role = "user", content = "{{ question }}"},
          {role = "assistant", content = "Answer:"},
        ]
        [[examples]]
        user = "2+2?"
        assistant = "4"
    """,
    )
    rendered = load_template(path).render(question="3+3?")

    assert rendered.messages == (
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "3+3?"},
        {"role": "assistant", "content": "Answer:"},
    )


def test_examples_may_use_template_variables():
    template = template_from_string("t", "Q: {{ q }}", examples=[("Q: in {{ lang }}?", "A: yes")])
    rendered = template.render(q="why?", lang="French")
    assert rendered.messages[0]["content"] == "Q: in French?"
    assert template.variables == {"q", "lang"}


def test_lists_of_chunks_render_as_paragraphs():
    template = template_from_string("t", "{{ context }}\n--\n{{ context | chunks(numbered=true) }}")
    chunks = ["  Paris is in France. ", Chunk("Berlin is in Germany.", "wiki"), {"text": "Rome is in Italy."}]

    content = template.render(context=chunks).messages[0]["content"]

    assert content == (
        "Paris is in France.\n\nBerlin is in Germany.\n\nRome is in Italy.\n--\n"
        "[1] Paris is in France.\n\n[2] Berlin is in Germany.\n\n[3] Rome is in Italy."
    )


def test_chunk_attributes_are_usable_in_loops():
    template = template_from_string("t", "{% for c in docs %}\n- {{ c.text }} ({{ c.source }})\n{% endfor %}")
    content = template.render(docs=[Chunk("a", "x"), Chunk("b", "y")]).messages[0]["content"]
    assert content == "- a (x)\n- b (y)"


def test_chunks_filter_rejects_non_text_items():
    template = template_from_string("t", "{{ docs | chunks }}")
    with pytest.raises(PromptError, match=r"chunks filter got a int at position 1"):
        template.render(docs=["fine", 3])


def test_chunks_filter_rejects_a_mapping_without_text():
    with pytest.raises(PromptError, match=r"mapping without a 'text' key"):
        template_from_string("t", "{{ doc | chunks }}").render(doc={"body": "x"})


def test_templates_are_sandboxed():
    template = template_from_string("t", "{{ obj.__class__.__mro__ }}")
    with pytest.raises(PromptError, match="rendering `template` failed"):
        template.render(obj="x")


def test_text_and_prompt_hash_describe_the_rendered_messages():
    rendered = template_from_string("t", "Q: {{ q }}", system="Be brief.").render(q="why?")

    assert rendered.text() == "[system]\nBe brief.\n\n[user]\nQ: why?"
    assert rendered.prompt_hash == messages_hash(
        [{"content": "Be brief.", "role": "system"}, {"role": "user", "content": "Q: why?"}]
    )
    assert (
        rendered.prompt_hash != template_from_string("t", "Q: {{ q }}", system="Be brief.").render(q="how?").prompt_hash
    )
    assert rendered.to_messages() == list(rendered.messages) and rendered.to_messages()[0] is not rendered.messages[0]
    assert len({rendered, template_from_string("t", "Q: {{ q }}", system="Be brief.").render(q="why?")}) == 1


# --- hashing -----------------------------------------------------------------


def test_hash_ignores_toml_layout_and_path(tmp_path):
    compact = write(
        tmp_path / "a",
        "qa",
        '''
        version="1"
        temperature=0
        system="Be brief."
        template="""Question: {{ question }}"""
    ''',
    )
    spaced = write(
        tmp_path / "b",
        "qa",
        '''
        # same prompt, different layout: comments, key order, string styles
        template = """
        Question: {{ question }}
        """
        system   = 'Be brief.'
        temperature = 0.0
        version = "1"
    ''',
    )
    assert load_template(compact).hash == load_template(spaced).hash


def test_hash_changes_when_the_content_changes(tmp_path):
    base = load_template(write(tmp_path, "qa", 'version = "1"\ntemplate = "Question: {{ question }}"'))
    changed_text = template_from_string("qa", "Question:  {{ question }}", version="1")
    changed_version = template_from_string("qa", "Question: {{ question }}", version="2")
    changed_param = template_from_string("qa", "Question: {{ question }}", version="1", temperature=0.5)
    with_example = template_from_string("qa", "Question: {{ question }}", version="1", examples=[("a", "b")])
    same = template_from_string("qa", "Question: {{ question }}", version="1")

    assert same.hash == base.hash
    assert len({base.hash, changed_text.hash, changed_version.hash, changed_param.hash, with_example.hash}) == 5


def test_hash_is_a_fixed_value_for_fixed_content():
    # Pinned so a change to the canonical form (which would orphan every stored result) is noticed.
    template = template_from_string("qa", "Question: {{ question }}", version="1", system="Be brief.", temperature=0)
    canonical = (
        '{"format":"pytest-llmops/prompt-template/1","messages":[{"content":"Be brief.","role":"system"},'
        '{"content":"Question: {{ question }}","role":"user"}],"name":"qa","params":{"temperature":0.0},"version":"1"}'
    )
    assert template.hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert template.hash == "064740a327500595f97a86d2a9ac8dcc7440247534644ec6f9a888ebedab66d5"


# --- rendering errors --------------------------------------------------------


def test_missing_variable_names_the_template_file_and_what_it_needs(tmp_path):
    path = write(tmp_path, "support_qa", SUPPORT_QA)
    with pytest.raises(PromptError) as info:
        load_template(path).render(question="Why?")

    message = str(info.value)
    assert f"prompt 'support_qa@3' ({path})" in message
    assert "missing variable 'context'" in message
    assert "It uses: context, question" in message
    assert 'prompt("support_qa", context=..., question=...)' in message


def test_extra_variable_is_an_error_with_a_suggestion_unless_not_strict():
    template = template_from_string("qa", "Q: {{ question }}")
    with pytest.raises(PromptError, match=r"unknown variable 'questoin' \(did you mean 'question'\?\)") as info:
        template.render(question="a", questoin="b")
    assert "strict=False" in str(info.value)

    assert template.render(question="a", extra="ignored", strict=False).messages[0]["content"] == "Q: a"


def test_optional_variables_may_be_left_out_when_the_template_allows_it():
    template = template_from_string("t", "{% if hint is defined %}Hint: {{ hint }}\n{% endif %}Q: {{ q }}")
    assert template.render(q="x").messages[0]["content"] == "Q: x"
    assert template.render(q="x", hint="h").messages[0]["content"] == "Hint: h\nQ: x"


def test_a_variable_named_strict_can_be_passed_as_a_mapping():
    template = template_from_string("t", "{{ strict }}")
    assert template.render({"strict": "yes"}).messages[0]["content"] == "yes"


def test_missing_attribute_names_the_field():
    template = template_from_string("t", "{{ chunk.txt }}")
    with pytest.raises(PromptError, match=r"inline.*has no attribute 'txt' in `template`"):
        template.render(chunk=Chunk("a", "b"))


# --- bad files ---------------------------------------------------------------


def test_toml_syntax_error_gives_line_column_and_points_at_it(tmp_path):
    path = write(tmp_path, "p", 'version = "1"\ntemplate = "Hello\nworld"\n')
    message = error_of(path)
    assert message.startswith(f"{path}:2:18: not valid TOML: Illegal character")
    assert '\n    template = "Hello\n                     ^\n' in message
    assert 'triple quotes: template = """..."""' in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('template = "Hi"', 'p.toml: missing `version`. Add a line such as version = "1"'),
        (
            'version = 3\ntemplate = "Hi"',
            'p.toml:1: `version` must be a non-empty string, got an integer 3. Quote it: version = "3".',
        ),
        ('version = "1"\nsystem = "Be brief."', "p.toml: missing `template`. Add the user message"),
        (
            'version = "1"\ntemperature = "0.2"\ntemplate = "Hi"',
            "p.toml:2: `temperature` must be a number >= 0, got a string '0.2'. Write it without quotes",
        ),
        (
            'version = "1"\ntemplate = "Hi"\nmax_tokens = 1.5',
            "p.toml:3: `max_tokens` must be a whole number >= 1, got a number 1.5",
        ),
        ('version = "1"\ntemplate = "Hi"\ntop_p = 2', "p.toml:3: `top_p` must be a number from 0 to 1"),
        (
            'version = "1"\ntemplate = "Hi"\nstop = [1]',
            "p.toml:3: `stop` must be a non-empty string or an array of them",
        ),
        (
            'version = "1"\ntemplate = ["Hi"]',
            'p.toml:2: `template` must be a string, got an array [\'Hi\']. Write it as template = """..."""',
        ),
        (
            'version = "1"\ntemprature = 0.2\ntemplate = "Hi"',
            "p.toml:2: unknown key `temprature`. Did you mean `temperature`? "
            "A prompt template may set only: name, version,",
        ),
        (
            'name = "support"\nversion = "1"\ntemplate = "Hi"',
            "p.toml:1: `name` is 'support' but the file is 'p.toml': the file name is the prompt's name. "
            'Rename the file to support.toml, or set name = "p" (or remove `name`).',
        ),
        (
            'version = "1"\ntemplate = "Hi"\nmessages = [{role = "user", content = "Hi"}]',
            "p.toml:2: has both `messages` and `template`; use one form.",
        ),
        (
            'version = "1"\nmessages = [{role = "usr", content = "Hi"}]',
            "messages[1].role is 'usr'; it must be one of system, developer, user, assistant. Did you mean 'user'?",
        ),
        (
            'version = "1"\ntemplate = "Hi"\n[[examples]]\nuser = "a"',
            "p.toml:3: examples[1] lacks assistant; an example has exactly `user` and `assistant`.",
        ),
    ],
    ids=[
        "no-version",
        "int-version",
        "no-template",
        "temperature-str",
        "max-tokens-float",
        "top-p-range",
        "stop-type",
        "template-type",
        "unknown-key",
        "name-mismatch",
        "template-and-messages",
        "bad-role",
        "bad-example",
    ],
)
def test_bad_file_errors_name_the_file_the_problem_and_the_fix(tmp_path, text, expected):
    path = write(tmp_path, "p", text)
    message = error_of(path)
    assert message.startswith(str(tmp_path)), message
    assert expected in message, message


def test_jinja_syntax_error_points_at_the_template_line_and_the_file_line(tmp_path):
    path = write(
        tmp_path,
        "p",
        '''
        version = "1"
        template = """
        Context: {{ context }}
        Question: {{ question }
        """
    ''',
    )
    message = error_of(path)
    assert message.startswith(f"{path}:5: Jinja syntax error in `template`, line 2 of that text: unexpected '}}'")
    assert "    Question: {{ question }\n" in message


def test_error_attributes_carry_path_and_line(tmp_path):
    path = write(tmp_path, "p", 'version = "1"\ntemplate = "Hi"\nseed = "x"')
    with pytest.raises(PromptError) as info:
        load_template(path)
    assert (info.value.path, info.value.line) == (path, 3)


def test_inline_templates_are_checked_like_files():
    with pytest.raises(
        PromptError, match=r"inline prompt 'qa': unknown key `temprature`. Did you mean `temperature`\?"
    ):
        template_from_string("qa", "Hi", temprature=0.1)
    with pytest.raises(PromptError, match=r"Jinja syntax error in `system`"):
        template_from_string("qa", "Hi", system="{% if %}")


# --- the library -------------------------------------------------------------


def test_library_renders_by_name_like_the_fixture(tmp_path):
    write(tmp_path, "support_qa", SUPPORT_QA)
    prompt = PromptLibrary(tmp_path)

    rendered = prompt("support_qa", question="Why?", context=["a", "b"])

    assert isinstance(rendered, RenderedPrompt)
    assert rendered.messages[-1]["content"] == "Context:\na\n\nb\n\nQuestion: Why?"
    assert prompt.names() == ["support_qa"] and "support_qa" in prompt


def test_first_folder_wins_and_subfolders_are_searched(tmp_path):
    write(tmp_path / "project", "greet", 'version = "2"\ntemplate = "Hello from the project"')
    write(tmp_path / "shared" / "basics", "greet", 'version = "1"\ntemplate = "Hello from shared"')
    write(tmp_path / "shared", "bye", 'version = "1"\ntemplate = "Bye"')

    library = PromptLibrary(tmp_path / "project", str(tmp_path / "shared"))

    assert library.get("greet").version == "2"
    assert library.get("bye").path == tmp_path / "shared" / "bye.toml"
    assert library.names() == ["bye", "greet"]


def test_unknown_name_suggests_a_close_one_and_lists_what_was_searched(tmp_path):
    write(tmp_path, "support_qa", SUPPORT_QA)
    write(tmp_path, "summarise", 'version = "1"\ntemplate = "{{ text }}"')
    with pytest.raises(PromptError) as info:
        PromptLibrary(tmp_path)("suport_qa", question="x")

    message = str(info.value)
    assert "no prompt template named 'suport_qa'. Did you mean 'support_qa'?" in message
    assert "Available: summarise, support_qa." in message
    assert f"Searched (setting `llmops_prompts`): {tmp_path}." in message


def test_missing_folder_names_the_setting(tmp_path):
    with pytest.raises(PromptError, match=r"prompt folder '.*nowhere' does not exist. .*setting `llmops_prompts`"):
        PromptLibrary(tmp_path / "nowhere")


def test_duplicate_names_in_one_folder_are_an_error(tmp_path):
    first = write(tmp_path / "a", "qa", 'version = "1"\ntemplate = "A"')
    second = write(tmp_path / "b", "qa", 'version = "1"\ntemplate = "B"')
    with pytest.raises(PromptError) as info:
        PromptLibrary(tmp_path)
    assert f"  qa: {first}, {second}\n" in str(info.value)
    assert "rename or delete all but one" in str(info.value)


def test_library_sees_new_and_edited_files(tmp_path):
    library = PromptLibrary(tmp_path)
    path = write(tmp_path, "late", 'version = "1"\ntemplate = "One"')
    assert library.get("late").version == "1"

    path.write_text('version = "22"\ntemplate = "Two"', encoding="utf-8")
    assert library.get("late").version == "22"


def test_load_all_reports_every_bad_file(tmp_path):
    write(tmp_path, "good", 'version = "1"\ntemplate = "Hi"')
    write(tmp_path, "bad1", 'template = "Hi"')
    write(tmp_path, "bad2", 'version = "1"')
    with pytest.raises(PromptError, match=r"(?s)2 prompt template\(s\) are invalid.*bad1.toml.*bad2.toml"):
        PromptLibrary(tmp_path).load_all()


# --- recording on the case ---------------------------------------------------


def test_rendering_records_the_template_on_the_current_case():
    qa = template_from_string("qa", "Q: {{ q }}", version="4")
    other = template_from_string("other", "Hi")
    record = CaseRecord("x")

    with case_scope(record):
        qa.render(q="a")
        qa.render(q="b")
        other.render()
    qa.render(q="outside the case")

    assert record.prompts == [PromptUse("qa", "4", qa.hash), PromptUse("other", "0", other.hash)]


def test_a_failed_render_records_nothing():
    record = CaseRecord("x")
    with case_scope(record), pytest.raises(PromptError):
        template_from_string("qa", "Q: {{ q }}").render()
    assert record.prompts == []
