"""kd.promptkd: the logits and loss against the official formula and by hand, the trained parts, the
class vectors computed once, labels never read, the bad inputs, the views and a short fit."""

import math

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.core.run import EventLog
from nbdistill.core.views import VIEWS
from nbdistill.families.kd.pipelines import promptkd as promptkd_module
from nbdistill.families.kd.pipelines.promptkd_loss import class_vectors, promptkd_loss
from nbdistill.models import MLP, PromptedTransformer

PromptKD = nd.get_method("kd.promptkd").module_class
TEACHER = lambda: MLP(64, [16, 12], 10)  # noqa: E731  (penultimate width 12)


def student(**kw):
    torch.manual_seed(0)
    return PromptedTransformer(**{"width": 8, "heads": 2, "class_dim": 12, **kw})


def official_loss(image_ft, tea_text_features, tea_logits, logit_scale, temperature):
    """zhengli97/PromptKD, trainers/promptkd.py: CustomCLIP.forward normalises the projected image
    features; CustomCLIP_teacher normalises the text features; PromptKD.forward_backward computes
    ``stu_logits = logit_scale * image_ft @ tea_text_features.t()`` and ``L_ukd = F.kl_div(
    F.log_softmax(stu_logits / T, 1), F.softmax(tea_logits / T, 1), reduction='sum') * T * T / stu_logits.numel()``."""
    image_ft = image_ft / image_ft.norm(dim=-1, keepdim=True)
    tea_text_features = tea_text_features / tea_text_features.norm(dim=-1, keepdim=True)
    stu_logits = logit_scale * image_ft @ tea_text_features.t()
    loss = (
        F.kl_div(F.log_softmax(stu_logits / temperature, dim=1), F.softmax(tea_logits / temperature, dim=1), reduction="sum")
        * (temperature * temperature)
        / stu_logits.numel()
    )
    return stu_logits, loss


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_logits_and_loss_match_the_official_formula_float64(temperature):
    g = torch.Generator().manual_seed(0)
    teacher = TEACHER().double()
    s = student().double()
    PromptKD(student=s, teacher=teacher, temperature=temperature, logit_scale=7.0)  # stores the class vectors in s
    x = torch.randn(6, 64, generator=g, dtype=torch.float64)
    s.eval()
    with torch.no_grad():
        projected = s.projector(s.encode(x))  # the un-normalised projected image features
        tea_logits = teacher(x)
        text = teacher.net[-1].weight  # the class vectors: the teacher's classifier rows
        expected_logits, expected_loss = official_loss(projected, text, tea_logits, 7.0, temperature)
        ours = s(x)
        loss = promptkd_loss(ours, tea_logits, temperature)["loss"]
    torch.testing.assert_close(ours, expected_logits, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(loss, expected_loss, rtol=1e-12, atol=1e-12)


def test_loss_by_hand():
    s_logits = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    t_logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    # row 0: p_t = (1/2, 1/2), p_s = (e/(e+1), 1/(e+1)); row 1: p_s uniform, p_t = (e²/(e²+1), 1/(e²+1))
    e, e2 = math.e, math.e**2
    kl0 = 0.5 * math.log(0.5 / (e / (e + 1))) + 0.5 * math.log(0.5 / (1 / (e + 1)))
    pt = (e2 / (e2 + 1), 1 / (e2 + 1))
    kl1 = pt[0] * math.log(pt[0] / 0.5) + pt[1] * math.log(pt[1] / 0.5)
    terms = promptkd_loss(s_logits, t_logits, 1.0)
    assert terms["loss"].item() == pytest.approx((kl0 + kl1) / 4, rel=1e-12)  # sum / (B·C), T² = 1
    t2 = promptkd_loss(2 * s_logits, 2 * t_logits, 2.0)["loss"].item()  # same softmaxes at T = 2, times T² = 4
    assert t2 == pytest.approx(4 * (kl0 + kl1) / 4, rel=1e-12)


def test_class_vectors_are_the_teachers_normalised_classifier_rows():
    teacher = TEACHER()
    module = PromptKD(student=student(), teacher=teacher, logit_scale=3.0)
    rows = F.normalize(teacher.net[-1].weight.detach(), dim=-1)
    torch.testing.assert_close(module.student.class_vectors, rows)
    torch.testing.assert_close(class_vectors(teacher), rows)
    assert module.student.logit_scale.item() == 3.0
    assert not any(b.requires_grad for b in module.student.buffers())


def test_only_prompts_and_projector_are_trained():
    module = PromptKD(student=student(prompts=3, depth=2, prompt_depth=2), teacher=TEACHER())
    trained = {n for n, p in module.student.named_parameters() if p.requires_grad}
    assert trained == {"prompt_tokens", "layer_prompts.0"} | {
        f"projector.{n}" for n, _ in module.student.projector.named_parameters()
    }
    optimised = {id(p) for group in module.configure_optimizers().param_groups for p in group["params"]}
    assert optimised == {id(p) for p in module.student.parameters() if p.requires_grad}
    everything = PromptKD(student=student(), teacher=TEACHER(), train_encoder=True)
    assert all(p.requires_grad for p in everything.student.parameters())


def test_labels_are_never_read():
    module = PromptKD(student=student(), teacher=TEACHER())
    x = torch.randn(5, 64)
    a = module.loss_terms((x, torch.arange(5)))["loss"]
    b = module.loss_terms((x, torch.tensor([9, 9, 9, 9, 9])))["loss"]
    assert a.item() == b.item()


def test_zero_prompts_change_the_features_only_through_the_prompts():
    s = student(prompts=2).eval()
    x = torch.randn(3, 64)
    with torch.no_grad():
        for p in s.prompt_parameters():
            p.zero_()
        torch.testing.assert_close(s(x), s(x, use_prompts=False))
        s.prompt_tokens.copy_(torch.randn(s.prompt_tokens.shape))  # not constant: ln_pre maps a constant token to 0
        assert not torch.allclose(s(x), s(x, use_prompts=False))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"student": MLP(64, [8], 10)}, "kd.promptkd trains a student's prompt tokens, but the MLP student has no"),
        ({"student": student(class_dim=16)}, "the teacher's class vectors are 12-dimensional"),
        ({"student": student(num_classes=7)}, "the teacher has 10 classes but the student 7"),
        ({"student": student(prompts=0)}, "the student has no prompt tokens (prompts=0) and train_encoder=False"),
        ({"student": student(), "teacher": None}, "kd.promptkd distils a teacher's class vectors and logits"),
    ],
)
def test_bad_inputs_are_refused_with_the_fix(kwargs, message):
    kwargs = {"teacher": TEACHER(), **kwargs}
    with pytest.raises(ConfigError) as info:
        PromptKD(**kwargs)
    assert message in str(info.value)


def test_a_student_of_another_width_is_projected_or_refused():
    s = student(width=8, class_dim=12, projection="linear")  # 8 -> 12 by the projector
    assert PromptKD(student=s, teacher=TEACHER()).student(torch.randn(2, 64)).shape == (2, 10)
    with pytest.raises(ConfigError, match=r"projection='none' needs the encoder's width \(8\) to equal"):
        student(width=8, class_dim=12, projection="none")
    with pytest.raises(ConfigError, match="rows=3 must divide in_features=64"):
        student(rows=3)


@pytest.mark.parametrize("name", ["promptkd_prompts", "promptkd_class_cosine"])
def test_views_wait_on_an_empty_log(name):
    ax = VIEWS[name](Figure().subplots(), EventLog())
    assert any("waiting" in t.get_text() for t in ax.texts)


def test_views_draw_the_logged_accuracies_and_a_class_cosine_table_with_a_missing_class():
    def event(kind, name, step, **fields):
        return {"step": step, "epoch": 0, "time": 0.0, "kind": kind, "name": name, **fields}

    log = EventLog(
        [
            event("scalar", "val/student_acc", 5, value=0.8),
            event("scalar", "val/student_acc_zero_prompts", 5, value=0.6),
            event("scalar", "val/teacher_acc", 5, value=0.95),
            event("table", "val/class_cosine", 5, columns=["0", "1"], rows=[[0.9, -0.2], [None, None]]),
        ]
    )
    ax = VIEWS["promptkd_prompts"](Figure().subplots(), log)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "learned prompts (0.800)",
        "zero prompts (0.600)",
        "teacher (0.950)",
    ]
    ax = VIEWS["promptkd_class_cosine"](Figure().subplots(), log)
    image = ax.get_images()[0].get_array()
    assert image[0, 0] == pytest.approx(0.9) and image.mask[1].all()


@pytest.mark.slow
def test_fit_computes_class_vectors_once_trains_only_prompts_and_logs_the_views(tmp_path, monkeypatch):
    calls = []
    original = promptkd_module.class_vectors
    monkeypatch.setattr(promptkd_module, "class_vectors", lambda t: calls.append(1) or original(t))
    torch.manual_seed(0)
    s = PromptedTransformer(width=8, heads=2, depth=1, prompt_depth=1)
    frozen = {
        n: p.detach().clone() for n, p in s.named_parameters() if not n.startswith(("prompt", "layer_prompts", "projector"))
    }
    prompts = s.prompt_tokens.detach().clone()
    run = nd.fit(
        "kd.promptkd",
        teacher=nd.zoo.teacher("digits-mlp"),
        student=s,
        data=nd.data.Digits(n_train=64, batch_size=32),
        max_epochs=2,
        runs_root=tmp_path,
    )
    assert calls == [1]  # when the module was built, never per step
    assert run.status == "finished"
    trained = run.student()  # rebuilt from the run's record: a whole PromptedTransformer classifier
    assert isinstance(trained, PromptedTransformer)
    for n, p in trained.named_parameters():
        if n in frozen:
            torch.testing.assert_close(p, frozen[n], msg=n)
    assert not torch.equal(trained.prompt_tokens, prompts)
    assert 0.0 <= run.log.last_value("test/student_acc_zero_prompts") <= 1.0
    rows = run.log.of("test/class_cosine")[-1]["rows"]
    assert len(rows) == 10 and all(-1.0 - 1e-6 <= v <= 1.0 + 1e-6 for row in rows for v in row if v is not None)
