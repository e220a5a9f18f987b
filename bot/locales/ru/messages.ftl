## Commands (shown in Telegram's menu)
cmd-start = Главное меню
cmd-help = Как это работает
cmd-status = Тариф и остаток сообщений
cmd-settings = Язык, режим, инструкция, VIP
cmd-model = Выбрать модель ИИ
cmd-new = Начать новый диалог
cmd-image = Нарисовать картинку
cmd-instructions = Ваша инструкция для бота
cmd-subscribe = VIP-подписка
cmd-forget = Стереть историю диалогов
cmd-admin = Меню оператора
cmd-stats = Цифры за сегодня
cmd-find = Найти пользователя: /find <id или @username>
cmd-grant = Добавить дни VIP: /grant <id> <дней>
cmd-revoke = Завершить VIP: /revoke <id>
cmd-block = Приостановить доступ: /block <id>
cmd-unblock = Вернуть доступ: /unblock <id>
cmd-refund = Вернуть платёж: /refund <charge id>
cmd-broadcast = Рассылка: /broadcast all|vip|free

## Main menu
welcome =
    Привет, { $name }! Я Помогатор: ChatGPT, Perplexity и DeepSeek в одном чате.
    Напишите вопрос, отправьте голосовое, фото или документ — отвечу выбранной моделью. { $limit } сообщений бесплатно, VIP снимает лимит.
welcome-back = С возвращением, { $name }! Спрашивайте или выберите действие ниже.
btn-new-chat = 🆕 Новый чат
btn-model = 🧠 Модель
btn-picture = 🎨 Картинка
btn-status = 📊 Статус
btn-settings = ⚙️ Настройки
btn-help = ❓ Помощь
btn-vip = ⭐ VIP
btn-back = ← Назад
btn-home = ☰ Меню

help =
    Как пользоваться Помогатором:
    • Напишите сообщение — выбранная модель ответит с учётом этого диалога.
    • Отправьте голосовое, фото (подпись — ваш вопрос) или документ: PDF, текст или код.
    • /image и описание — нарисую картинку.
    • /model — выбор ChatGPT, Perplexity (поиск в интернете с источниками) или DeepSeek.
    • /settings — язык, режим (переводчик, помощник программиста…) и ваша инструкция.
    • /new — забыть диалог и начать заново. /status — тариф и остаток сообщений.
    • /forget — стереть историю всех ваших диалогов.
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
settings-mode = Режим: { $mode }
settings-instructions = Ваша инструкция: «{ $text }»
settings-instructions-none = Ваша инструкция: нет
btn-mode = 🎭 Режим: { $mode }
btn-instructions = ✍️ Ваша инструкция
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
listening = 🎙 Слушаю…
transcript-title = 🎙 Вы сказали:
document-truncated-note = ℹ️ Документ слишком длинный для модели: я прочитал только его начало.
researching = Изучаю источники… { $seconds } с
trimmed-note = ℹ️ Самые старые сообщения диалога больше не помещаются в память модели. /new начнёт заново.
reasoning-title = 💭 Рассуждения
sources-title = Источники
empty-question = Напишите вопрос словами — и я отвечу.
busy = Я ещё отвечаю на предыдущие сообщения — подождите немного.
not-supported = Я понимаю текст, голосовые, фото и документы (PDF, текст, код), а такие сообщения пока не умею читать — пришлите что-то из этого.
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
error-database_unavailable = { error-backend-unavailable }
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
error-voice_unavailable = Голосовые сообщения сейчас недоступны — напишите вопрос текстом.
error-attachment_too_large = Файл слишком большой: не больше { $limit_mb } МБ.
error-audio_too_long = Запись слишком длинная: не больше { $limit_s } секунд.
error-images_not_supported = Эта модель не видит картинки — выберите другую через /model.
error-unsupported_document = Такой тип файла я не читаю — пришлите PDF, текстовый файл или файл с кодом.
error-document_unreadable = Не нашёл текста в этом документе — возможно, это скан, файл повреждён или защищён паролем.
error-invalid_attachment = Не получилось использовать этот файл — отправьте его ещё раз или как фото или PDF.
error-image_generation_unavailable = Рисовать картинки сейчас не получается — извините! Словами ответить могу.
error-image_generation_failed = Картинку нарисовать не удалось.
error-transcription_failed = Не удалось разобрать это голосовое сообщение.
error-vip_required = Это возможность ⭐ VIP — /subscribe.
error-quota_exhausted = Бесплатные сообщения закончились — /subscribe, чтобы оформить VIP.
error-unknown_mode = Этого режима больше нет — выберите другой в /settings.
error-instructions_too_long = Инструкция слишком длинная: не больше { $limit } символов.
error-user_not_found = Мы ещё не знакомы — пожалуйста, сначала отправьте /start.
error-generic = У нас что-то пошло не так. Извините! Попробуйте ещё раз.
error-refunded = Ничего не списано.
error-try-another = Можно попробовать ещё раз или выбрать другую модель.
error-rate_limited = Вы отправляете сообщения быстрее, чем я успеваю отвечать. Подождите { $wait } и отправьте ещё раз — ничего не списано.
error-fair_use_exceeded = За последние сутки вы отправили { $limit ->
        [one] { $limit } сообщение
        [few] { $limit } сообщения
       *[many] { $limit } сообщений
    } — это предел честного использования VIP. Продолжим через { $wait }; ничего не списано.
error-breaker-open = Сервис этой модели сейчас не отвечает, поэтому я приостановил запросы к нему на { $wait }. Ничего не списано — выберите другую модель в /model или попробуйте позже.
error-breaker-open-soon = Сервис этой модели сейчас не отвечает, поэтому я ненадолго приостановил запросы к нему. Ничего не списано — выберите другую модель в /model или попробуйте позже.
wait-seconds = { $seconds } с
wait-minutes = { $minutes } мин
wait-whole-hours = { $hours } ч
wait-hours = { $hours } ч { $minutes } мин

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

## Voice, photos, documents
voice-unavailable = Голосовые сообщения сейчас недоступны — напишите вопрос текстом.
voice-too-long = Голосовые — не длиннее { $limit }, а это { $duration }. Запишите покороче, пожалуйста.
file-too-large = Файл слишком большой: { $size_mb } МБ, а я принимаю до { $limit_mb } МБ.
file-too-large-telegram = Файл слишком большой: Telegram даёт ботам скачивать файлы до { $limit_mb } МБ.
document-unsupported = Такой тип файла я не читаю. Читаю { $supported } — и фото.
document-types-more = { $main } и файлы с кодом или данными ({ $examples }…)
photo-model-blind = { $model } не видит картинки. Переключитесь на модель, которая видит, — и я сразу отвечу на это фото:
photo-no-models = { $model } не видит картинки, а моделей, которые видят, сейчас нет. Опишите, пожалуйста, словами.
photo-not-yours = Эта кнопка — для того, кто отправил фото.
photo-send-again = Отправьте фото ещё раз — и я его посмотрю.
btn-switch-to = Переключиться на { $provider } · { $model }

## Pictures
picture-hint =
    🎨 Могу нарисовать картинку. Напишите /image и что нарисовать, например:
    /image рыжая лиса в снегу, акварель
picture-hint-cost = { $credits ->
        [one] Картинка стоит { $credits } бесплатное сообщение, с ⭐ VIP — без ограничений.
        [few] Картинка стоит { $credits } бесплатных сообщения, с ⭐ VIP — без ограничений.
       *[other] Картинка стоит { $credits } бесплатных сообщений, с ⭐ VIP — без ограничений.
    }
picture-hint-vip-only = Картинки — возможность ⭐ VIP.
picture-vip-only = 🎨 Картинки — возможность ⭐ VIP: с VIP безлимитные сообщения и картинки.
paywall-picture =
    🎨 Картинка стоит { $credits ->
        [one] { $credits } бесплатное сообщение
        [few] { $credits } бесплатных сообщения
       *[other] { $credits } бесплатных сообщений
    }, а у вас осталось { $left }.
    ⭐ VIP: безлимитные сообщения со всеми моделями за { $price } Telegram Stars в месяц.
picture-cost = { $credits ->
        [one] Списано { $credits } бесплатное сообщение
        [few] Списано { $credits } бесплатных сообщения
       *[other] Списано { $credits } бесплатных сообщений
    } · осталось { $left }

## Chat modes and the custom instruction
modes-title = Как мне отвечать? Сейчас: { $mode }
mode-chosen = Режим: { $mode }. Действует со следующего сообщения.
instructions-none =
    ✍️ Ваша инструкция: пока нет.
    Скажите один раз, как отвечать — «покороче», «я новичок в Python», «обращайся ко мне на ты» — и я буду следовать этому в каждом ответе.
instructions-current =
    ✍️ Ваша инструкция — я следую ей в каждом ответе:

    { $text }
btn-instructions-set = ✏️ Задать
btn-instructions-clear = 🗑 Удалить
instructions-prompt-title = ✏️ Ваша инструкция
instructions-prompt = Ответьте на это сообщение, как мне отвечать, — до { $limit } символов. Например: «Отвечай коротко и простыми словами».
instructions-placeholder = Отвечай коротко и простыми словами
instructions-saved = ✅ Сохранено — действует со следующего сообщения.
instructions-cleared = Инструкция удалена.
instructions-too-long = Здесь { $length ->
        [one] { $length } символ
        [few] { $length } символа
       *[other] { $length } символов
    }, а инструкция может быть до { $limit }. Сократите, пожалуйста, и отправьте ещё раз.

## Forgetting the conversation history (/forget)
btn-forget = 🗑 Стереть историю диалогов
forget-confirm =
    🗑 Стереть историю ваших диалогов?
    Я сотру тексты всех ваших сообщений и моих ответов и начну новый диалог. Отменить это нельзя.
    Платежи и записи об оплате сохранятся — этого требует закон.
btn-forget-yes = 🗑 Да, стереть
btn-forget-no = Отмена
forget-done = { $count ->
        [0] Готово: сохранённых сообщений не было.
        [one] Готово: стёрто { $count } сообщение.
        [few] Готово: стёрто { $count } сообщения.
       *[many] Готово: стёрто { $count } сообщений.
    } Начат новый диалог. Платежи и записи об оплате сохранены — этого требует закон.
forget-cancelled = Ничего не стёрто.

## Операторы (ADMIN_IDS)
admin-menu = 🛠 Меню оператора. Команды: /admin, /find, /grant, /revoke, /block, /unblock, /broadcast, /refund.
admin-btn-stats = 📊 Статистика
admin-btn-find = 🔎 Найти пользователя
admin-btn-broadcast = 📣 Рассылка
admin-btn-help = ❓ Справка
admin-help =
    /find <id или @username> — карточка пользователя с кнопками VIP и блокировки
    /grant <id> <дней> — добавить дни VIP (1–3650)
    /revoke <id> — завершить VIP сейчас (и остановить подписку в Stars)
    /block <id>, /unblock <id> — приостановить или вернуть доступ
    /refund <charge id> — вернуть платёж (charge id — в карточке пользователя)
    /broadcast all|vip|free — разослать сообщение всем, VIP или бесплатным пользователям
admin-stats =
    📊 Пользователи: { $users } (+{ $new } сегодня) · ⭐ VIP: { $vip }
    Платящие: { $paying } · конверсия { $conversion }
    Расходы на ИИ: ${ $cost_today } сегодня · ${ $cost_month } за месяц
    Выручка за месяц: { $revenue } · возвратов: { $refunds }
admin-stats-models = Ответы сегодня:
admin-stats-model = • { $provider } / { $model }: { $count }, ошибок { $failed }
admin-stats-errors = Доля ошибок сегодня:
admin-stats-error = • { $provider }: { $rate } ({ $failed } из { $total })
admin-stats-none = нет
admin-find-usage = Использование: /find <telegram id или @username>
admin-grant-usage = Использование: /grant <telegram id или @username> <дней, 1–3650>
admin-target-usage = Использование: /{ $command } <telegram id или @username>
admin-user-not-found = Пользователь { $query } не найден.
admin-card-title = 👤 { $name } · id { $id }
admin-card-username = @{ $username }
admin-card-since = С нами с { $date } · язык { $language }
admin-card-vip = ⭐ VIP до { $until } · автопродление { $renew ->
        [yes] включено
       *[no] выключено
    }
admin-card-free = Бесплатный план: осталось { $left } из { $limit } сообщений
admin-card-usage = Ответов: { $messages } · расходы на ИИ ${ $cost }
admin-card-blocked = ⛔ Доступ приостановлен
admin-card-bot-blocked = 🚫 Заблокировал бота
admin-card-payments = Платежи (возврат: /refund <charge id>):
admin-card-payment = • { $date } · { $amount } { $currency } · { $status } · { $charge }
admin-card-no-payments = Платежей нет.
admin-btn-vip30 = ⭐ +30 дней
admin-btn-vip365 = ⭐ +365 дней
admin-btn-revoke = ✖️ Снять VIP
admin-btn-block = ⛔ Заблокировать
admin-btn-unblock = ✅ Разблокировать
admin-vip-granted = ⭐ VIP до { $until }.
admin-vip-revoked = VIP завершён.
admin-vip-revoked-stars = VIP завершён; подписка в Stars не продлится.
admin-stars-cancel-failed = VIP завершён, но Telegram не остановил подписку в Stars: { $reason }
admin-user-blocked = ⛔ Заблокирован: ни ответов, ни платежей до разблокировки.
admin-user-unblocked = ✅ Разблокирован.
admin-broadcast-usage = Использование: /broadcast all|vip|free — затем пришлите сообщение для рассылки.
admin-broadcast-prompt-all = 📣 Рассылка всем пользователям
admin-broadcast-prompt-vip = 📣 Рассылка VIP-пользователям
admin-broadcast-prompt-free = 📣 Рассылка бесплатным пользователям
admin-broadcast-prompt = Ответьте сообщением для рассылки: текст, фото — что угодно. Сначала вы увидите предпросмотр.
admin-broadcast-preview = ☝️ Получателей: { $count } ({ $audience }). Отправить?
admin-audience-all = все пользователи
admin-audience-vip = VIP
admin-audience-free = бесплатный план
admin-btn-broadcast-confirm = ✅ Отправить
admin-btn-broadcast-drop = ✖️ Отмена
admin-btn-broadcast-stop = ⏹ Остановить
admin-broadcast-dropped = Рассылка отменена, ничего не отправлено.
admin-broadcast-started = 📣 Рассылка №{ $id } началась: получателей { $total }.
admin-broadcast-stopping = Останавливаю рассылку №{ $id }…
admin-broadcast-progress = 📣 Рассылка №{ $id }: { $handled }/{ $total } · доставлено { $delivered } · заблокировали { $blocked } · ошибок { $failed }
admin-broadcast-done = ✅ Рассылка №{ $id } завершена: доставлено { $delivered } · заблокировали { $blocked } · ошибок { $failed } (из { $total }).
admin-broadcast-canceled = ⏹ Рассылка №{ $id } остановлена: доставлено { $delivered } · заблокировали { $blocked } · ошибок { $failed } (из { $total }).
admin-access-suspended = Ваш доступ к Pomogator приостановлен операторами. Если это ошибка, напишите в поддержку.
error-user_blocked = { admin-access-suspended }
decline-user_blocked = ваш доступ приостановлен.
answer-lost = Извините — меня перезапустили, пока я отвечал, и ответ потерялся. Ничего не списано.
answer-lost-send-again = { answer-lost } Пожалуйста, отправьте сообщение ещё раз.
btn-ask-again = 🔁 Спросить ещё раз
