"""DDP: two processes under torchrun on gloo give the same parameters as one process on the combined batch."""

import socket
import subprocess
import sys
import textwrap

import pytest
import torch

WORKER = textwrap.dedent('''
    import os, sys
    import numpy as np
    import torch
    torch.set_num_threads(1)
    from word2bert.train import Trainer, TrainingArguments
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from ddp_common import make_problem, make_model, collate

    out_dir = sys.argv[1]
    data = make_problem()
    model = make_model()
    args = TrainingArguments(batch_size=8, max_steps=6, learning_rate=0.05, warmup_steps=1, seed=0,
                             gradient_accumulation_steps=2, progress=False, output_dir=out_dir)
    trainer = Trainer(model, args, data, collate)
    assert trainer.world_size == 2, trainer.world_size
    state = trainer.train()
    rank = trainer.rank
    torch.save({k: v.clone() for k, v in model.state_dict().items()}, os.path.join(out_dir, f"rank{rank}.pt"))

    # a tiny BERT with dropout and dynamic masking: parameters stay identical across ranks
    from word2bert.models.bert import BertConfig, BertForPreTraining
    from word2bert.objectives import MaskedLM
    from word2bert.objectives.pretraining import PretrainingCollator, PretrainingDataset
    rng = np.random.default_rng(0)
    documents = [[rng.integers(5, 40, 5).astype(np.int32) for _ in range(6)] for _ in range(40)]
    dataset = PretrainingDataset.from_documents(documents, 2, 3, max_seq_length=16)
    torch.manual_seed(0)
    bert = BertForPreTraining(BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=32, max_position_embeddings=16))
    collator = PretrainingCollator(MaskedLM(40, 4, (0, 1, 2, 3, 4)), 0)
    Trainer(bert, TrainingArguments(batch_size=4, max_steps=3, learning_rate=1e-3, progress=False, seed=1),
            dataset, collator).train()
    torch.save({k: v.clone() for k, v in bert.state_dict().items()}, os.path.join(out_dir, f"bert{rank}.pt"))

    # masked LM only (pretrain bert --no-nsp): the unused pooler must not break DDP's gradient reduction
    single = PretrainingDataset.from_documents(documents, 2, 3, max_seq_length=16, next_sentence=False)
    torch.manual_seed(0)
    mlm_only = BertForPreTraining(BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1,
                                             num_attention_heads=2, intermediate_size=32,
                                             max_position_embeddings=16), next_sentence=False)
    Trainer(mlm_only, TrainingArguments(batch_size=4, max_steps=3, learning_rate=1e-3, progress=False, seed=1),
            single, PretrainingCollator(MaskedLM(40, 4, (0, 1, 2, 3, 4)), 0, next_sentence=False)).train()
    torch.save({k: v.clone() for k, v in mlm_only.state_dict().items()}, os.path.join(out_dir, f"mlm{rank}.pt"))

    # gradual unfreezing under DDP: a layer frozen at the start and unfrozen after step 2 is trained
    from ddp_common import TwoLayers
    torch.manual_seed(0)
    two = TwoLayers()
    two.second.requires_grad_(False)
    def unfreeze(trainer, state):
        if state.global_step == 2:
            trainer.model.second.requires_grad_(True)
    Trainer(two, TrainingArguments(batch_size=8, max_steps=5, learning_rate=0.05, progress=False, seed=0),
            data, collate, callbacks=[unfreeze]).train()
    torch.save({k: v.clone() for k, v in two.state_dict().items()}, os.path.join(out_dir, f"two{rank}.pt"))
    torch.distributed.destroy_process_group()
''')

COMMON = textwrap.dedent('''
    import numpy as np
    import torch

    class Regression(torch.nn.Module):
        """y = w . x + b with a mean squared error over the batch."""
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(5, 1)
        def forward(self, x, y):
            prediction = self.linear(x).squeeze(-1)
            return type("Out", (), {"loss": ((prediction - y) ** 2).mean()})()

    class TwoLayers(torch.nn.Module):
        """y = second(tanh(first(x))) with a mean squared error."""
        def __init__(self):
            super().__init__()
            self.first = torch.nn.Linear(5, 4)
            self.second = torch.nn.Linear(4, 1)
        def forward(self, x, y):
            prediction = self.second(torch.tanh(self.first(x))).squeeze(-1)
            return type("Out", (), {"loss": ((prediction - y) ** 2).mean()})()

    def make_problem(n=64):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(n, 5)).astype(np.float32)
        y = (x @ np.arange(1, 6) + 0.5 + 0.1 * rng.normal(size=n)).astype(np.float32)
        return [{"x": x[i], "y": y[i]} for i in range(n)]

    def make_model():
        torch.manual_seed(0)
        return Regression()

    def collate(items, rng=None):
        return {"x": torch.tensor(np.stack([i["x"] for i in items])), "y": torch.tensor([i["y"] for i in items])}
''')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch without distributed support")
def test_two_gloo_processes_match_one_process_on_combined_batch(tmp_path):
    (tmp_path / "ddp_common.py").write_text(COMMON)
    (tmp_path / "worker.py").write_text(WORKER)
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
               f"--master_port={free_port()}", "--master_addr=127.0.0.1", str(tmp_path / "worker.py"), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = torch.load(out / "rank0.pt"), torch.load(out / "rank1.pt")
    bert0, bert1 = torch.load(out / "bert0.pt"), torch.load(out / "bert1.pt")
    for key in bert0:
        assert torch.equal(bert0[key], bert1[key]), key
    mlm0, mlm1 = torch.load(out / "mlm0.pt"), torch.load(out / "mlm1.pt")
    for key in mlm0:
        assert torch.equal(mlm0[key], mlm1[key]), key
    two0, two1 = torch.load(out / "two0.pt"), torch.load(out / "two1.pt")
    torch.manual_seed(0)
    sys.path.insert(0, str(tmp_path))
    try:
        import ddp_common
        initial_two = ddp_common.TwoLayers().state_dict()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("ddp_common", None)
    for key in two0:
        assert torch.equal(two0[key], two1[key]), key
        assert not torch.equal(two0[key], initial_two[key]), key  # the unfrozen layer was trained too
    assert (out / "checkpoint.pt").exists()  # written by rank 0 only, once

    # one process, batch 16 = 2 ranks x 8: same examples per step, same mean gradient
    sys.path.insert(0, str(tmp_path))
    try:
        import ddp_common
        from word2bert.train import Trainer, TrainingArguments

        torch.set_num_threads(1)
        model = ddp_common.make_model()
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        args = TrainingArguments(batch_size=16, max_steps=6, learning_rate=0.05, warmup_steps=1, seed=0,
                                 gradient_accumulation_steps=2, progress=False)
        Trainer(model, args, ddp_common.make_problem(), ddp_common.collate).train()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("ddp_common", None)
    for key, value in model.state_dict().items():
        assert torch.equal(rank0[key], rank1[key]), key
        assert not torch.allclose(value, initial[key])
        torch.testing.assert_close(rank0[key], value, rtol=1e-5, atol=1e-6)
