"""aiogram's response models survive garbage collection instead of being rebuilt per call."""

import gc
import weakref

from aiogram import methods
from aiogram.methods.base import Response

from bot.utils.response_models import pin_response_models


def test_every_method_answered_by_the_bot_has_a_pinned_response_model():
    pinned = pin_response_models()
    for method in (methods.SendMessage, methods.SendMessageDraft, methods.SendChatAction):
        assert pinned[method] is Response[method.__returning__]


def test_response_model_outlives_a_garbage_collection():
    pin_response_models()
    model = weakref.ref(Response[methods.EditMessageText.__returning__])
    gc.collect()
    assert model() is not None
