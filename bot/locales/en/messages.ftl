## Commands (shown in Telegram's menu)
cmd-start = Main menu
cmd-help = How it works
cmd-status = Plan and messages left
cmd-settings = Language, chat mode, instruction, VIP
cmd-model = Choose the AI model
cmd-new = Start a new conversation
cmd-image = Draw a picture
cmd-instructions = Your custom instruction
cmd-subscribe = VIP subscription
cmd-forget = Erase my conversation history
cmd-admin = Operator menu
cmd-stats = Today's figures
cmd-find = Find a user: /find <id or @username>
cmd-grant = Add VIP days: /grant <id> <days>
cmd-revoke = End VIP now: /revoke <id>
cmd-block = Suspend a user: /block <id>
cmd-unblock = Restore a user: /unblock <id>
cmd-refund = Refund a payment: /refund <charge id>
cmd-broadcast = Message everyone: /broadcast all|vip|free

## Main menu
welcome =
    Hi, { $name }! I'm Pomogator: ChatGPT, Perplexity and DeepSeek in one chat.
    Write a question, send a voice message, a photo or a document — I answer with the model you picked. { $limit } messages are free; VIP lifts the limit.
welcome-back = Welcome back, { $name }! Ask anything, or pick what to do below.
btn-new-chat = 🆕 New chat
btn-model = 🧠 Model
btn-picture = 🎨 Picture
btn-status = 📊 Status
btn-settings = ⚙️ Settings
btn-help = ❓ Help
btn-vip = ⭐ VIP
btn-back = ← Back
btn-home = ☰ Menu

help =
    How to use Pomogator:
    • Write a message — the chosen model answers, remembering this conversation.
    • Send a voice message, a photo (the caption is your question) or a document: PDF, text or code.
    • /image and a description — I draw a picture.
    • /model — pick ChatGPT, Perplexity (web search with sources) or DeepSeek.
    • /settings — language, chat mode (translator, code helper…) and your custom instruction.
    • /new — forget the conversation and start fresh. /status — your plan and messages left.
    • /forget — erase the history of all your conversations.
    • { $limit } messages are free; /subscribe for VIP without limits.

## Status and settings
status-free = Plan: free — { $left } of { $limit } messages left.
status-vip = Plan: ⭐ VIP until { $until }.
status-model = Model: { $provider } · { $model }
settings-title = Settings
settings-profile = Name: { $name }
settings-language = Language: { $language }
settings-reasoning-on = Reasoning of thinking models: shown (collapsed)
settings-reasoning-off = Reasoning of thinking models: hidden
btn-language-ru = 🇷🇺 Русский
btn-language-en = 🇬🇧 English
btn-reasoning-show = 💭 Show reasoning
btn-reasoning-hide = 💭 Hide reasoning
language-name = English
settings-mode = Chat mode: { $mode }
settings-instructions = Custom instruction: “{ $text }”
settings-instructions-none = Custom instruction: none
btn-mode = 🎭 Mode: { $mode }
btn-instructions = ✍️ Custom instruction
settings-saved = Saved.

## Models
model-choose-provider = Choose an assistant. Now: { $provider } · { $model }
model-choose-model = { $provider }: choose a model.
model-chosen = Done! Now answering: { $provider } · { $model }
model-unavailable = { $provider } is not available right now — please choose another assistant.
model-long-running = This model researches the web and can take a few minutes to answer.

## Conversation
new-chat = New conversation started. Model: { $provider } · { $model }. What shall we talk about?
thinking = Thinking…
listening = 🎙 Listening…
transcript-title = 🎙 You said:
document-truncated-note = ℹ️ The document is too long for the model: I read only its beginning.
researching = Researching the web… { $seconds } s
trimmed-note = ℹ️ The oldest messages of this conversation no longer fit the model's memory. /new starts afresh.
reasoning-title = 💭 Reasoning
sources-title = Sources
empty-question = Write your question in words, and I'll answer it.
busy = I'm still answering your previous messages — please wait a moment.
not-supported = I can read text, voice messages, photos and documents (PDF, text, code), but not this kind of message — please send one of those.
button-outdated = This button is outdated. Open /start for a fresh menu.

## VIP
paywall =
    You've used all { $limit } free messages.
    ⭐ VIP: unlimited messages with every model, for { $price } Telegram Stars a month.
subscribe =
    ⭐ VIP — unlimited messages with ChatGPT, Perplexity and DeepSeek.
    { $price } Telegram Stars for { $days } days.

already-vip = You are VIP until { $until }. Thank you!

## Errors
error-backend-unavailable = Pomogator is temporarily unavailable. Please try again in a minute — nothing was charged.
error-database_unavailable = { error-backend-unavailable }
error-provider_timeout = The model took too long to answer.
error-provider_rate_limited = The model is overloaded right now.
error-provider_unavailable = The model is unavailable right now.
error-provider_error = The model returned an unusable answer.
error-content_refused = The model refused to answer this request.
error-context_too_long = The conversation is too long for this model — /new starts afresh.
error-provider_not_configured = This model is not available on this bot — please choose another with /model.
error-message_too_long = Your message is too long: up to { $limit } characters, please.
error-duplicate_request = This message is already being answered.
error-unknown_model = This model is no longer offered — please choose another with /model.
error-voice_unavailable = Voice messages aren't available right now — please type your question.
error-attachment_too_large = This file is too big for me: up to { $limit_mb } MB, please.
error-audio_too_long = This recording is too long: up to { $limit_s } seconds, please.
error-images_not_supported = This model can't see pictures — please choose another with /model.
error-unsupported_document = I can't read this type of file — please send a PDF, a text or a code file.
error-document_unreadable = I couldn't find any text in this document — it may be a scan, damaged or password-protected.
error-invalid_attachment = I couldn't use this file — please send it again, or as a photo or PDF.
error-image_generation_unavailable = Drawing pictures isn't available right now — sorry! I can still answer in words.
error-image_generation_failed = The picture couldn't be drawn.
error-transcription_failed = I couldn't make out this voice message.
error-vip_required = This is a ⭐ VIP feature — /subscribe.
error-quota_exhausted = You've used all your free messages — /subscribe for VIP.
error-unknown_mode = This chat mode is no longer offered — please choose another in /settings.
error-instructions_too_long = This instruction is too long: up to { $limit } characters, please.
error-user_not_found = I don't know you yet — please send /start first.
error-generic = Something went wrong on our side. Sorry! Please try again.
error-refunded = Nothing was charged.
error-try-another = You can try again or choose another model.
error-rate_limited = You're sending messages faster than I can answer. Please wait { $wait } and send it again — nothing was charged.
error-fair_use_exceeded = You've sent { $limit ->
        [one] { $limit } message
       *[other] { $limit } messages
    } in the last day — the fair-use limit of VIP. Please continue in { $wait }; nothing was charged.
error-breaker-open = The service behind this model isn't answering right now, so I've paused requests to it for { $wait }. Nothing was charged — please choose another model in /model, or try again later.
error-breaker-open-soon = The service behind this model isn't answering right now, so I've paused requests to it for a little while. Nothing was charged — please choose another model in /model, or try again later.
wait-seconds = { $seconds } s
wait-minutes = { $minutes } min
wait-whole-hours = { $hours } h
wait-hours = { $hours } h { $minutes } min

## Payments
btn-pay-stars = ⭐ Pay { $price } Stars
btn-pay-fiat = 💳 Pay { $amount } { $currency }
btn-cancel-renewal = Turn off auto-renewal
btn-resume-renewal = Turn on auto-renewal
invoice-title = Pomogator VIP
invoice-description = Unlimited messages with ChatGPT, Perplexity and DeepSeek for { $days } days.
vip-renewal-on = Auto-renewal: on
vip-renewal-off = Auto-renewal: off
payment-thanks = Thank you! ⭐ VIP is active until { $until }.
payment-not-matched = We received your payment but could not match it to an offer. An operator will sort it out — please write to support.
payment-declined = This invoice can't be paid: { $reason } Please open /subscribe for a fresh one.
payment-try-later = Payments are briefly unavailable. Please try again in a minute; nothing was charged.
payment-refunded = Your payment was refunded. VIP for that period has ended.
renewal-cancelled = Auto-renewal is off. VIP stays active until { $until }.
renewal-resumed = Auto-renewal is on again.
refund-usage = Usage: /refund <telegram payment charge id>
refund-done = Refunded { $amount } { $currency } to user { $user }. VIP revoked for that period.
refund-already = This payment was refunded before.
refund-not-found = No payment with this charge id.
refund-failed = Telegram refused the refund: { $reason }
admin-only = This command is for the bot's operators.
decline-unknown_invoice = this invoice is unknown.
decline-wrong_user = this invoice was issued to someone else.
decline-amount_mismatch = the price has changed.
decline-invoice_used = it is already paid.
decline-offer_expired = the offer has expired.
error-forbidden = This action is for the bot's operators.

## Voice, photos, documents
voice-unavailable = Voice messages aren't available right now — please type your question.
voice-too-long = Voice messages up to { $limit } long, please — this one is { $duration }.
file-too-large = This file is too big for me: { $size_mb } MB, and I can take up to { $limit_mb } MB.
file-too-large-telegram = This file is too big: Telegram lets bots download files of up to { $limit_mb } MB.
document-unsupported = I can't read this type of file. I read { $supported } — and photos.
document-types-more = { $main } and code or data files ({ $examples }…)
photo-model-blind = { $model } can't see pictures. Switch to a model that can — I'll answer this photo right away:
photo-no-models = { $model } can't see pictures, and no model that can is available right now. Please describe it in words.
photo-not-yours = This button is for the person who sent the photo.
photo-send-again = Send the photo again and I'll look at it.
btn-switch-to = Switch to { $provider } · { $model }

## Pictures
picture-hint =
    🎨 I can draw a picture for you. Write /image and what to draw, for example:
    /image a red fox in the snow, watercolor
picture-hint-cost = { $credits ->
        [one] A picture costs { $credits } free message; with ⭐ VIP pictures are unlimited.
       *[other] A picture costs { $credits } free messages; with ⭐ VIP pictures are unlimited.
    }
picture-hint-vip-only = Pictures are a ⭐ VIP feature.
picture-vip-only = 🎨 Pictures are a ⭐ VIP feature: with VIP you get unlimited messages and pictures.
paywall-picture =
    🎨 A picture costs { $credits ->
        [one] { $credits } free message
       *[other] { $credits } free messages
    }, and you have { $left } left.
    ⭐ VIP: unlimited messages with every model, for { $price } Telegram Stars a month.
picture-cost = { $credits ->
        [one] { $credits } free message used
       *[other] { $credits } free messages used
    } · { $left } left

## Chat modes and the custom instruction
modes-title = How should I answer? Now: { $mode }
mode-chosen = Chat mode: { $mode }. It applies from your next message.
instructions-none =
    ✍️ Custom instruction: none yet.
    Tell me once how to answer — “be brief”, “I'm new to Python”, “call me Anna” — and I'll follow it in every answer.
instructions-current =
    ✍️ Your custom instruction — I follow it in every answer:

    { $text }
btn-instructions-set = ✏️ Set
btn-instructions-clear = 🗑 Clear
instructions-prompt-title = ✏️ Custom instruction
instructions-prompt = Reply to this message with how I should answer — up to { $limit } characters. For example: “Answer briefly, in plain words.”
instructions-placeholder = Answer briefly, in plain words
instructions-saved = ✅ Saved — it applies from your next message.
instructions-cleared = Custom instruction cleared.
instructions-too-long = That's { $length } characters — an instruction can be up to { $limit }. Please shorten it and send it again.

## Forgetting the conversation history (/forget)
btn-forget = 🗑 Erase conversation history
forget-confirm =
    🗑 Erase your conversation history?
    I'll erase the texts of all your messages and my answers and start a new conversation. This can't be undone.
    Your payments and billing records are kept — the law requires them.
btn-forget-yes = 🗑 Yes, erase
btn-forget-no = Cancel
forget-done = { $count ->
        [0] Done: there were no saved messages to erase.
        [one] Done: { $count } message erased.
       *[other] Done: { $count } messages erased.
    } A new conversation has started. Your payments and billing records are kept — the law requires them.
forget-cancelled = Nothing was erased.

## Operators (ADMIN_IDS)
admin-menu = 🛠 Operator menu. Commands: /admin, /find, /grant, /revoke, /block, /unblock, /broadcast, /refund.
admin-btn-stats = 📊 Stats
admin-btn-find = 🔎 Find a user
admin-btn-broadcast = 📣 Broadcast
admin-btn-help = ❓ Help
admin-help =
    /find <id or @username> — a user's card, with buttons for VIP and blocking
    /grant <id> <days> — add days of VIP (1–3650)
    /revoke <id> — end VIP now (and stop their Stars subscription)
    /block <id>, /unblock <id> — suspend or restore a user's access
    /refund <charge id> — refund a payment (charge ids are on the user's card)
    /broadcast all|vip|free — copy a message to everyone, VIP or free users
admin-stats =
    📊 Users: { $users } (+{ $new } today) · ⭐ VIP: { $vip }
    Paying users: { $paying } · conversion { $conversion }
    AI cost: ${ $cost_today } today · ${ $cost_month } this month
    Revenue this month: { $revenue } · refunds: { $refunds }
admin-stats-models = Answers today:
admin-stats-model = • { $provider } / { $model }: { $count }, failed { $failed }
admin-stats-errors = Error rate today:
admin-stats-error = • { $provider }: { $rate } ({ $failed } of { $total })
admin-stats-none = none
admin-find-usage = Usage: /find <telegram id or @username>
admin-grant-usage = Usage: /grant <telegram id or @username> <days, 1–3650>
admin-target-usage = Usage: /{ $command } <telegram id or @username>
admin-user-not-found = No user matches { $query }.
admin-card-title = 👤 { $name } · id { $id }
admin-card-username = @{ $username }
admin-card-since = Since { $date } · language { $language }
admin-card-vip = ⭐ VIP until { $until } · auto-renewal { $renew ->
        [yes] on
       *[no] off
    }
admin-card-free = Free plan: { $left } of { $limit } messages left
admin-card-usage = Answers: { $messages } · AI cost ${ $cost }
admin-card-blocked = ⛔ Access suspended
admin-card-bot-blocked = 🚫 Has blocked the bot
admin-card-payments = Payments (refund with /refund <charge id>):
admin-card-payment = • { $date } · { $amount } { $currency } · { $status } · { $charge }
admin-card-no-payments = No payments.
admin-btn-vip30 = ⭐ +30 days
admin-btn-vip365 = ⭐ +365 days
admin-btn-revoke = ✖️ Revoke VIP
admin-btn-block = ⛔ Block
admin-btn-unblock = ✅ Unblock
admin-vip-granted = ⭐ VIP until { $until }.
admin-vip-revoked = VIP ended.
admin-vip-revoked-stars = VIP ended; the Stars subscription will not renew.
admin-stars-cancel-failed = VIP ended, but Telegram did not stop the Stars subscription: { $reason }
admin-user-blocked = ⛔ Blocked: no answers and no payments until unblocked.
admin-user-unblocked = ✅ Unblocked.
admin-broadcast-usage = Usage: /broadcast all|vip|free — then send the message to copy.
admin-broadcast-prompt-all = 📣 Broadcast to all users
admin-broadcast-prompt-vip = 📣 Broadcast to VIP users
admin-broadcast-prompt-free = 📣 Broadcast to free users
admin-broadcast-prompt = Reply with the message to send: text, a photo, anything. You'll see a preview first.
admin-broadcast-preview = ☝️ This goes to { $count } { $audience }. Send it?
admin-audience-all = users
admin-audience-vip = VIP users
admin-audience-free = free users
admin-btn-broadcast-confirm = ✅ Send
admin-btn-broadcast-drop = ✖️ Cancel
admin-btn-broadcast-stop = ⏹ Stop
admin-broadcast-dropped = Broadcast cancelled; nothing was sent.
admin-broadcast-started = 📣 Broadcast #{ $id } started: { $total } recipients.
admin-broadcast-stopping = Stopping broadcast #{ $id }…
admin-broadcast-progress = 📣 Broadcast #{ $id }: { $handled }/{ $total } · delivered { $delivered } · blocked { $blocked } · failed { $failed }
admin-broadcast-done = ✅ Broadcast #{ $id } finished: delivered { $delivered } · blocked { $blocked } · failed { $failed } (of { $total }).
admin-broadcast-canceled = ⏹ Broadcast #{ $id } stopped: delivered { $delivered } · blocked { $blocked } · failed { $failed } (of { $total }).
admin-access-suspended = Your access to Pomogator has been suspended by its operators. If you think this is a mistake, please contact support.
error-user_blocked = { admin-access-suspended }
decline-user_blocked = your access is suspended.
answer-lost = Sorry — I was restarted while answering this, and the answer was lost. Nothing was charged for it.
answer-lost-send-again = { answer-lost } Please send it again.
btn-ask-again = 🔁 Ask again
