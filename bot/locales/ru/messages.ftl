## Commands (shown in Telegram's menu)
cmd-start = Главное меню
cmd-help = Как это работает
cmd-status = Тариф и остаток сообщений
cmd-settings = Язык, рассуждения, VIP
cmd-model = Выбрать модель ИИ
cmd-new = Начать новый диалог
cmd-subscribe = VIP-подписка

## Main menu
welcome =
    Привет, { $name }! Я Помогатор: ChatGPT, Perplexity и DeepSeek в одном чате.
    Просто напишите вопрос — отвечу выбранной моделью. { $limit } сообщений бесплатно, VIP снимает лимит.
welcome-back = С возвращением, { $name }! Спрашивайте или выберите действие ниже.
btn-new-chat = 🆕 Новый чат
btn-model = 🧠 Модель
btn-status = 📊 Статус
btn-settings = ⚙️ Настройки
btn-help = ❓ Помощь
btn-vip = ⭐ VIP
btn-back = ← Назад
btn-home = ☰ Меню

help =
    Как пользоваться Помогатором:
    • Напишите сообщение — выбранная модель ответит с учётом этого диалога.
    • /model — выбор ChatGPT, Perplexity (поиск в интернете с источниками) или DeepSeek.
    • /new — забыть диалог и начать заново.
    • /status — тариф и остаток сообщений. /settings — язык и рассуждения.
    • { $limit } сообщений бесплатно; /subscribe — VIP без ограничений.

## Status and settings
status-free = Тариф: бесплатный — осталось { $left } из { $limit } сообщений.
status-vip = Тариф: ⭐ VIP до { $until }.
status-model = Модель: { $provider } · { $model }
settings-title = Настройки
settings-profile = Имя: { $name }
settings-language = Язык: { $language }
settings-reasoning-on = Рассуждения думающих моделей: показываются (свёрнуто)
settings-reasoning-off = Рассуждения думающих моделей: скрыты
btn-language-ru = 🇷🇺 Русский
btn-language-en = 🇬🇧 English
btn-reasoning-show = 💭 Показывать рассуждения
btn-reasoning-hide = 💭 Скрывать рассуждения
language-name = Русский
settings-saved = Сохранено.

## Models
model-choose-provider = Выберите ассистента. Сейчас: { $provider } · { $model }
model-choose-model = { $provider }: выберите модель.
model-chosen = Готово! Теперь отвечает: { $provider } · { $model }
model-unavailable = { $provider } сейчас недоступен — выберите другого ассистента.
model-long-running = Эта модель ищет в интернете и может отвечать несколько минут.

## Conversation
new-chat = Новый диалог начат. Модель: { $provider } · { $model }. О чём поговорим?
thinking = Думаю…
researching = Изучаю источники… { $seconds } с
trimmed-note = ℹ️ Самые старые сообщения диалога больше не помещаются в память модели. /new начнёт заново.
reasoning-title = 💭 Рассуждения
sources-title = Источники
busy = Я ещё отвечаю на предыдущие сообщения — подождите немного.
text-only = Пока я понимаю только текст — напишите вопрос сообщением.
button-outdated = Эта кнопка устарела. Откройте /start, чтобы получить новое меню.

## VIP
paywall =
    Все { $limit } бесплатных сообщений использованы.
    ⭐ VIP: безлимитные сообщения со всеми моделями за { $price } Telegram Stars в месяц.
subscribe =
    ⭐ VIP — безлимитные сообщения с ChatGPT, Perplexity и DeepSeek.
    { $price } Telegram Stars за { $days } дней.

already-vip = У вас VIP до { $until }. Спасибо!

## Errors
error-backend-unavailable = Помогатор временно недоступен. Попробуйте через минуту — ничего не списано.
error-provider_timeout = Модель слишком долго отвечала.
error-provider_rate_limited = Модель сейчас перегружена.
error-provider_unavailable = Модель сейчас недоступна.
error-provider_error = Модель вернула непригодный ответ.
error-content_refused = Модель отказалась отвечать на этот запрос.
error-context_too_long = Диалог слишком длинный для этой модели — /new начнёт заново.
error-provider_not_configured = Эта модель недоступна в боте — выберите другую через /model.
error-message_too_long = Сообщение слишком длинное: не больше { $limit } символов.
error-duplicate_request = На это сообщение уже идёт ответ.
error-unknown_model = Эта модель больше не предлагается — выберите другую через /model.
error-generic = У нас что-то пошло не так. Извините! Попробуйте ещё раз.
error-refunded = Ничего не списано.
error-try-another = Можно попробовать ещё раз или выбрать другую модель.

## Payments
btn-pay-stars = ⭐ Оплатить { $price } Stars
btn-pay-fiat = 💳 Оплатить { $amount } { $currency }
btn-cancel-renewal = Отключить автопродление
btn-resume-renewal = Включить автопродление
invoice-title = Помогатор VIP
invoice-description = Безлимитные сообщения с ChatGPT, Perplexity и DeepSeek на { $days } дней.
vip-renewal-on = Автопродление: включено
vip-renewal-off = Автопродление: выключено
payment-thanks = Спасибо! ⭐ VIP активен до { $until }.
payment-not-matched = Мы получили оплату, но не смогли сопоставить её с предложением. Оператор разберётся — напишите в поддержку.
payment-declined = Этот счёт нельзя оплатить: { $reason } Откройте /subscribe, чтобы получить новый.
payment-try-later = Оплата ненадолго недоступна. Попробуйте через минуту — ничего не списано.
payment-refunded = Оплата возвращена. VIP за этот период отменён.
renewal-cancelled = Автопродление выключено. VIP действует до { $until }.
renewal-resumed = Автопродление снова включено.
refund-usage = Использование: /refund <telegram payment charge id>
refund-done = Возвращено { $amount } { $currency } пользователю { $user }. VIP за этот период отменён.
refund-already = Этот платёж уже возвращён.
refund-not-found = Платёж с таким charge id не найден.
refund-failed = Telegram отказал в возврате: { $reason }
admin-only = Эта команда — для операторов бота.
decline-unknown_invoice = счёт неизвестен.
decline-wrong_user = счёт выставлен другому пользователю.
decline-amount_mismatch = цена изменилась.
decline-invoice_used = он уже оплачен.
decline-offer_expired = предложение устарело.
error-forbidden = Это действие — для операторов бота.
