"""``kd.promptkd``: unsupervised prompt distillation (Li et al., "PromptKD: Unsupervised Prompt
Distillation for Vision-Language Models", CVPR 2024)."""

from __future__ import annotations

from typing import Any

from ....core.errors import ConfigError
from ....core.registry import HParam, register
from ..base import GAP_VIEWS, KDModule, temperature_hparam
from . import promptkd_views  # noqa: F401  (registers the views)
from .promptkd_evaluation import PromptGap
from .promptkd_loss import class_vectors, promptkd_loss

#: What the student needs to be prompt-distilled (``nd.models.PromptedTransformer`` has them).
STUDENT_PARTS = ("set_class_vectors", "prompt_parameters", "projector", "class_vectors", "features")


@register("kd.promptkd", views=(*GAP_VIEWS, "promptkd_prompts", "promptkd_class_cosine"))
class PromptKD(KDModule):
    r"""PromptKD: a prompted student learns, without labels, the teacher's logits against the
    teacher's own class vectors (Li et al., CVPR 2024).

    1. The teacher's class vectors are computed once, when the module is built, and stored in the
       student's ``class_vectors`` buffer (shared, never trained; :func:`.promptkd_loss.class_vectors`:
       the rows of the teacher's classifier, the counterpart of CLIP's text features of the class names).
    2. The student is a :class:`nbdistill.models.PromptedTransformer`: an image encoder with deep
       learnable prompt tokens (IVLP, as in the official code), a projector to the class vectors'
       width, and ``logits = logit_scale · cos(projected feature, class vector)``.
    3. Training reads only the inputs of the training batches, never their labels, and minimises
       :math:`T^2\,\mathrm{KL}(p_t^T \| p_s^T)/C` (:func:`.promptkd_loss.promptkd_loss`) with T = 1
       by default, as the official ``TEMPERATURE``.

    Trained parts, as in the official trainer (``requires_grad`` only on the names with "VPT"):
    the prompts and the projector; the encoder is frozen (``train_encoder=True`` also trains it,
    which is not the paper: there the encoder is CLIP's pre-trained one, here it is whatever the
    student was built with). ``self.student`` is the prompted student, with the class vectors and
    the logit scale in its state, so ``run.student()`` is the whole classifier.

    How it differs from the paper, and why: the teacher is a classifier, not CLIP, so its class
    vectors are its classifier's rows and its logits are its own (``W h + b``), where PromptKD's
    teacher is a prompt-tuned CLIP scoring ``s·cos``; the student's logit scale is a
    hyper-parameter (CLIP's frozen one is 100; an 8×8 student has no pre-trained one); the projector
    is ``Linear–BatchNorm–ReLU–Linear`` (the same map as the official 1×1 convolutions on a 1×1
    map). Verified against the official ``trainers/promptkd.py`` (loss, logits, trained parts);
    the teacher's pre-training (PromptSRC) and CLIP's image augmentations are not reproduced.
    """

    supports_teacher_cache = True
    evaluation_class = PromptGap
    temperature = temperature_hparam(1.0)
    logit_scale = HParam(float, 5.0, 1.0, 100.0, log=True, help="scale s of the student's logits s·cos(feature, class vector)")
    train_encoder = HParam(bool, False, help="also train the student's encoder (the paper trains only prompts and projector)")

    def build_parts(self) -> None:
        super().build_parts()
        missing = [p for p in STUDENT_PARTS if not hasattr(self.student, p)]
        if missing:
            raise ConfigError(
                f"kd.promptkd trains a student's prompt tokens, but the {type(self.student).__name__} student has no "
                f"{', '.join(missing)}; give it a prompted student, e.g. nd.models.PromptedTransformer(in_features=64, "
                "num_classes=10, class_dim=<the teacher's penultimate width>)"
            )
        if self.teacher is None:
            raise ConfigError("kd.promptkd distils a teacher's class vectors and logits: pass teacher=...")
        vectors = class_vectors(self.teacher)  # once: the student keeps them as a buffer
        classes, width = vectors.shape
        if width != self.student.class_dim:
            raise ConfigError(
                f"the teacher's class vectors are {width}-dimensional (its last Linear reads {width} features) but the "
                f"student projects its features to class_dim={self.student.class_dim}; build the student with "
                f"class_dim={width}"
            )
        if classes != self.student.num_classes:
            raise ConfigError(
                f"the teacher has {classes} classes but the student {self.student.num_classes}; build the student with "
                f"num_classes={classes}"
            )
        if not self.student.prompt_parameters() and not self.train_encoder:
            raise ConfigError(
                "the student has no prompt tokens (prompts=0) and train_encoder=False: only its projector would "
                "learn; build it with prompts >= 1"
            )
        self.student.set_class_vectors(vectors, self.logit_scale)
        trained = {id(p) for p in [*self.student.prompt_parameters(), *self.student.projector.parameters()]}
        for p in self.student.parameters():
            p.requires_grad_(self.train_encoder or id(p) in trained)

    def loss_terms(self, batch: Any) -> dict:
        x = batch[0]  # unlabeled: the labels are never read
        return promptkd_loss(self.student(x), self.teacher_logits(x), self.temperature)
