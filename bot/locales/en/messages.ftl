## Commands (shown in Telegram's menu)
cmd-start = Main menu
cmd-help = How it works
cmd-status = Plan and messages left
cmd-settings = Language, reasoning, VIP
cmd-model = Choose the AI model
cmd-new = Start a new conversation
cmd-subscribe = VIP subscription

## Main menu
welcome =
    Hi, { $name }! I'm Pomogator: ChatGPT, Perplexity and DeepSeek in one chat.
    Just write your question — I answer with the model you picked. { $limit } messages are free; VIP lifts the limit.
welcome-back = Welcome back, { $name }! Ask anything, or pick what to do below.
btn-new-chat = 🆕 New chat
btn-model = 🧠 Model
btn-status = 📊 Status
btn-settings = ⚙️ Settings
btn-help = ❓ Help
btn-vip = ⭐ VIP
btn-back = ← Back
btn-home = ☰ Menu

help =
    How to use Pomogator:
    • Write a message — the chosen model answers, remembering this conversation.
    • /model — pick ChatGPT, Perplexity (web search with sources) or DeepSeek.
    • /new — forget the conversation and start fresh.
    • /status — your plan and messages left. /settings — language and reasoning.
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
researching = Researching the web… { $seconds } s
trimmed-note = ℹ️ The oldest messages of this conversation no longer fit the model's memory. /new starts afresh.
reasoning-title = 💭 Reasoning
sources-title = Sources
busy = I'm still answering your previous messages — please wait a moment.
text-only = I understand text messages only for now — please type your question.
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
error-generic = Something went wrong on our side. Sorry! Please try again.
error-refunded = Nothing was charged.
error-try-another = You can try again or choose another model.

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
