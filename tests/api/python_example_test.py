"""Runs the Python ctypes binding and chat example (apps/examples/python) against the fixture
pack: struct layouts accepted by the library, model info, tokenizer round trip, chat template,
two turns with KV reuse, streaming and early stop, errors as ShardlmError, cancel, and chat.py
driven through a pipe. Standard library only (unittest, subprocess).
Environment: SHARDLM_LIBRARY (libshardlm.so path), SHARDLM_TEST_FIXTURE (fixture dir),
SHARDLM_EXAMPLES_PYTHON (apps/examples/python)."""

import os
import subprocess
import sys
import unittest

EXAMPLES = os.environ["SHARDLM_EXAMPLES_PYTHON"]
FIXTURE = os.environ["SHARDLM_TEST_FIXTURE"]
sys.path.insert(0, EXAMPLES)
import shardlm  # noqa: E402


class BindingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = shardlm.Model(os.path.join(FIXTURE, "tp2"), n_threads=2)

    @classmethod
    def tearDownClass(cls):
        cls.model.close()

    def test_info_plan_defaults(self):
        info = self.model.info()
        self.assertEqual(info["family"], "qwen3")
        self.assertEqual(info["tp_size"], 2)
        self.assertEqual(info["n_vocab"], 151936)
        self.assertEqual(info["has_chat_template"], 1)
        plan = self.model.memory_plan(as_json=True)
        self.assertEqual(len(plan["ranks"]), 2)
        self.assertIn("memory plan", self.model.memory_plan())
        self.assertEqual(self.model.stop_ids(), [151643, 151645])
        self.assertAlmostEqual(self.model.generation_defaults()["top_p"], 0.95, places=5)
        self.assertIn("cpu", shardlm.backends())

    def test_tokenizer_and_template(self):
        text = "Hello world, héllo 世界!"
        ids = self.model.tokenize(text)
        self.assertEqual(ids[0], 9707)
        self.assertEqual(self.model.detokenize(ids), text)
        rendered = self.model.apply_chat_template([{"role": "user", "content": "Hi"}],
                                                  enable_thinking=False)
        self.assertEqual(rendered, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
                                   "<think>\n\n</think>\n\n")

    def test_two_turns_reuse_the_kv_cache(self):
        with shardlm.Session(self.model, system="Be brief.") as s:
            streamed = []
            r1 = s.chat("Hello!", on_text=streamed.append, max_tokens=6, temperature=0,
                        ignore_eos=True)
            self.assertEqual(r1.finish_reason, "max_tokens")
            self.assertEqual(r1.n_generated, 6)
            self.assertEqual("".join(streamed), r1.text)
            self.assertEqual(s.last_reply(), r1.text)
            kv = s.info()["n_kv"]
            r2 = s.chat("And then?", max_tokens=6, temperature=0, ignore_eos=True)
            self.assertEqual(r2.n_reused, kv)  # every full KV block of the first turn
            self.assertGreater(kv, 0)
            self.assertLess(r2.n_prefilled, r2.n_prompt)
            self.assertEqual(s.info()["n_turns"], 2)
            self.assertEqual(len(s.tokens()), s.info()["n_ctx_used"])

    def test_stop_from_the_callback_and_cancel(self):
        with shardlm.Session(self.model) as s:
            seen = []

            def two_pieces(t):
                seen.append(t)
                return len(seen) < 2

            r = s.chat("Go", on_text=two_pieces, max_tokens=20, temperature=0, ignore_eos=True)
            self.assertEqual(r.finish_reason, "callback")
            with self.assertRaises(shardlm.ShardlmError) as cm:
                s.chat("Go on", on_text=lambda t: s.cancel(), max_tokens=-1, temperature=0,
                       ignore_eos=True)
            self.assertEqual(cm.exception.status_name, "cancelled")
            self.assertEqual(cm.exception.result.finish_reason, "cancelled")

    def test_errors(self):
        with self.assertRaises(shardlm.ShardlmError) as cm:
            shardlm.Model("/nonexistent/pack")
        self.assertEqual(cm.exception.status_name, "io")
        self.assertIn("/nonexistent/pack", cm.exception.message)
        with self.assertRaises(shardlm.ShardlmError) as cm:
            shardlm.Model(os.path.join(FIXTURE, "bad"))
        self.assertEqual(cm.exception.status_name, "format")
        with shardlm.Session(self.model) as s:
            with self.assertRaises(shardlm.ShardlmError) as cm:
                s.chat("x", top_p=2.0)
            self.assertEqual(cm.exception.status_name, "invalid_arg")
            self.assertIn("top_p", cm.exception.message)

    def test_chat_example_through_a_pipe(self):
        out = subprocess.run(
            [sys.executable, os.path.join(EXAMPLES, "chat.py"), "--pack",
             os.path.join(FIXTURE, "tp2"), "--threads", "2", "--max-tokens", "5", "--seed", "1"],
            # The first message is long enough that its KV fills whole 16-token blocks, which
            # the prefix cache gives back to the second turn.
            input="Hello, please tell me a long story about a brave knight and a dragon\n"
                  "And again?\n/reset\nHi\n", capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("Qwen3ForCausalLM, tp 2", out.stdout)
        self.assertEqual(out.stdout.count("user> "), 3)
        self.assertIn("[reset]", out.stdout)
        lines = [l for l in out.stdout.splitlines() if l.startswith("[5 tokens")]
        self.assertEqual(len(lines), 3, out.stdout)
        self.assertIn(" 0 reused", lines[0])
        self.assertNotIn(" 0 reused", lines[1])  # the second turn reuses the first


if __name__ == "__main__":
    unittest.main(verbosity=2)
