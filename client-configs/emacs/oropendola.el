;;; oropendola.el --- Oropendola AI through Eglot  -*- lexical-binding: t -*-

;; Version: 0.1
;; Package-Requires: ((emacs "29.1"))
;; Keywords: tools, languages, convenience
;; URL: https://oropendola.ai

;; This file is not part of GNU Emacs.

;;; Commentary:

;; Runs the Oropendola language server (`oropendola-ls') with Eglot, which
;; is built into Emacs 29.1 and later.  Loading this file:
;;
;; - puts an entry for `oropendola-modes' (Python, JavaScript/TypeScript,
;;   C/C++, Go, Rust, Java, Ruby, shell scripts, Markdown and plain text)
;;   at the front of `eglot-server-programs'.  Eglot runs one server per
;;   buffer, so in these modes `oropendola-ls' replaces any other language
;;   server: remove a mode from `oropendola-modes' to keep yours there;
;; - sends `oropendola-settings' (by default `analyzeOnSave' on, so saved
;;   files are analysed and the findings show up in Flymake) as
;;   `initializationOptions' and as the `oropendola' section of
;;   `eglot-workspace-configuration';
;; - sets `eglot-report-progress' (see `oropendola-report-progress').
;;
;; Everything standard comes through Eglot itself: diagnostics (Flymake),
;; code actions (`eglot-code-actions': Explain, Fix, Improve, Document,
;; Generate tests, and "run ... in the shell" on a selected command),
;; workspace search (`xref-find-apropos', which asks `workspace/symbol'),
;; chat documents (`*.oropendola.md', code action "Send to Oropendola"),
;; and confirmation of shell commands (a `completing-read' prompt).
;;
;; The commands here use Oropendola's own requests: `oropendola-chat',
;; `oropendola-search', `oropendola-index-workspace', `oropendola-status',
;; `oropendola-sign-in' and `oropendola-cancel'.
;;
;; Set-up (in your init file):
;;
;;   (add-to-list 'load-path "/path/to/oropendola-ls/client-configs/emacs")
;;   (require 'oropendola)
;;   (add-hook 'python-mode-hook #'eglot-ensure)   ; and other modes

;;; Code:

(require 'cl-lib)
(require 'eglot)
(require 'jsonrpc)
(require 'subr-x)
(require 'xref)

(declare-function markdown-mode "ext:markdown-mode" ())

(defgroup oropendola nil
  "The Oropendola AI assistant, through Eglot."
  :group 'eglot
  :prefix "oropendola-")

(defun oropendola--set-and-register (symbol value)
  "Set SYMBOL to VALUE and update the `eglot-server-programs' entry."
  (set-default symbol value)
  (when (fboundp 'oropendola-register)
    (oropendola-register)))

(defcustom oropendola-command '("oropendola-ls")
  "The command that starts the server, a program and its arguments.
Add \"--embedded\" to work offline on the built-in reference backend."
  :type '(repeat string))

(defcustom oropendola-modes
  '(python-mode python-ts-mode
    (js-mode :language-id "javascript") (js-ts-mode :language-id "javascript")
    (typescript-mode :language-id "typescript")
    (typescript-ts-mode :language-id "typescript")
    (tsx-ts-mode :language-id "typescriptreact")
    c-mode c-ts-mode (c++-mode :language-id "cpp") (c++-ts-mode :language-id "cpp")
    go-mode go-ts-mode rust-mode rust-ts-mode java-mode java-ts-mode
    ruby-mode ruby-ts-mode
    sh-mode bash-ts-mode
    markdown-mode (gfm-mode :language-id "markdown")
    (text-mode :language-id "plaintext"))
  "Major modes whose buffers `oropendola-ls' serves.
Each element is a mode symbol or (MODE :language-id ID), as in
`eglot-server-programs'.  Eglot also matches modes derived from
these (for example `text-mode' covers `org-mode'), and takes the
first entry that matches, so this one wins over Eglot's defaults."
  :type '(repeat (choice symbol (cons symbol plist)))
  :set #'oropendola--set-and-register)

(defcustom oropendola-settings '(:analyzeOnSave t)
  "Server settings, a plist of the names in the server's README.
Sent as `initializationOptions' and as the `oropendola' section of
`eglot-workspace-configuration'.  `analyzeOnSave' makes every save
publish the backend's analysis as diagnostics (source `oropendola');
set it to :json-false to turn that off.  Do not put `serverUrl'
here unless you use another backend: the default is oropendola.ai,
and the environment variable OROPENDOLA_SERVER_URL overrides it.
Changes apply when Eglot next starts the server;
\[eglot-signal-didChangeConfiguration] sends them to a running one.
A project whose .dir-locals.el sets `eglot-workspace-configuration'
replaces the section: add `:oropendola' there if you need it."
  :type 'plist)

(defcustom oropendola-report-progress t
  "Value this package gives `eglot-report-progress' when it loads.
t (the default) shows chats, indexing and shell commands in the
mode line; `messages' also logs every step in *Messages* (each
streamed piece of a chat answer is a step, so that is noisy); nil
leaves `eglot-report-progress' as it is.  Eglot declares progress
support to servers only while `eglot-report-progress' is non-nil,
and without it the server cannot stream anything."
  :type '(choice (const :tag "Mode line" t)
                 (const :tag "Mode line and *Messages*" messages)
                 (const :tag "Leave Eglot's setting alone" nil)))

(defcustom oropendola-request-timeout 600
  "Seconds to wait for a chat, indexing or sign-in before giving up."
  :type 'number)

(defconst oropendola-buffer-name "*oropendola*"
  "The buffer that shows the chat started by `oropendola-chat'.")

;;;; The server

(defclass oropendola-server (eglot-lsp-server) ()
  :documentation "An `oropendola-ls' connection (so the commands can find it).")

(defun oropendola--contact (&rest _)
  "The `eglot-server-programs' contact for `oropendola-ls'."
  `(oropendola-server ,@oropendola-command
                      :initializationOptions ,oropendola-settings))

(defun oropendola--entry-p (entry)
  "Whether ENTRY of `eglot-server-programs' is this package's."
  (eq (cdr-safe entry) #'oropendola--contact))

(defvar oropendola--chained-configuration nil
  "The default `eglot-workspace-configuration' before this package.")

(defun oropendola-workspace-configuration (server)
  "`eglot-workspace-configuration' with an `oropendola' section, for SERVER.
It adds `oropendola-settings' to whatever the default was before."
  (let* ((prev oropendola--chained-configuration)
         (base (if (functionp prev) (funcall prev server) prev)))
    (cond ((consp (car-safe base))      ; ((SECTION . VALUE) ...)
           (if (or (assq :oropendola base) (assoc "oropendola" base)) base
             (cons (cons :oropendola oropendola-settings) base)))
          ((plist-member base :oropendola) base)
          (t (append (list :oropendola oropendola-settings) base)))))

(defun oropendola-register ()
  "Put `oropendola-ls' first in `eglot-server-programs' for `oropendola-modes'.
Also chain `oropendola-workspace-configuration' into the default of
`eglot-workspace-configuration' and apply `oropendola-report-progress'."
  (setq eglot-server-programs
        (cons (cons oropendola-modes #'oropendola--contact)
              (cl-remove-if #'oropendola--entry-p eglot-server-programs)))
  (let ((current (default-value 'eglot-workspace-configuration)))
    (unless (eq current #'oropendola-workspace-configuration)
      (setq oropendola--chained-configuration current)
      (setq-default eglot-workspace-configuration
                    #'oropendola-workspace-configuration)))
  (when oropendola-report-progress
    (setq eglot-report-progress oropendola-report-progress)))

;;;; Helpers

(defvar-local oropendola--server nil
  "In the chat buffer: the server the conversation runs on.")
(defvar-local oropendola--conversation-id nil
  "In the chat buffer: the conversation that follow-ups continue.")
(defvar-local oropendola--pending nil
  "In the chat buffer: (SERVER . ID) of the chat request under way.")

(defun oropendola--live-p (server)
  "Whether SERVER is an Oropendola server that is still running."
  (and (cl-typep server 'oropendola-server) (jsonrpc-running-p server)))

(defun oropendola--server ()
  "The Oropendola server for the current buffer, or signal an error.
Outside an Eglot-managed buffer, the server of the chat buffer."
  (let ((server (eglot-current-server))
        (chat (get-buffer oropendola-buffer-name)))
    (cond ((oropendola--live-p server) server)
          ((and chat (oropendola--live-p
                      (buffer-local-value 'oropendola--server chat)))
           (buffer-local-value 'oropendola--server chat))
          (server (user-error "This buffer's language server is not oropendola-ls"))
          (t (eglot--current-server-or-lose)))))

(defun oropendola--uri-to-path (uri)
  "File name of URI (Eglot renamed the function in 1.16)."
  (funcall (if (fboundp 'eglot-uri-to-path) 'eglot-uri-to-path
             'eglot--uri-to-path)
           uri))

(defun oropendola--error-message (err)
  "Text of a JSON-RPC error ERR (a plist with :message, or an error)."
  (cond ((plist-get err :message))
        ((and (consp err) (symbolp (car err))) (error-message-string err))
        (t (format "%S" err))))

(defun oropendola--chat-buffer ()
  "The chat buffer, created in Markdown mode (else text mode) if need be."
  (or (get-buffer oropendola-buffer-name)
      (with-current-buffer (get-buffer-create oropendola-buffer-name)
        (if (fboundp 'markdown-mode) (markdown-mode) (text-mode))
        (current-buffer))))

;;;; Commands

;;;###autoload
(defun oropendola-chat (message &optional beg end new)
  "Ask Oropendola MESSAGE; show the answer in the *oropendola* buffer.
The current file and the region from BEG to END (interactively: the
active region, else point) go with it as context.  Follow-ups
continue the same conversation; with a prefix argument (NEW non-nil)
start a new one.  The request runs in the background: see the mode
line for progress, and `oropendola-cancel' to stop it."
  (interactive
   (list (read-string (if current-prefix-arg "Ask Oropendola (new chat): "
                        "Ask Oropendola: "))
         (if (use-region-p) (region-beginning) (point))
         (if (use-region-p) (region-end) (point))
         current-prefix-arg))
  (when (string-blank-p message) (user-error "Nothing to ask"))
  (let* ((server (oropendola--server))
         (chat (oropendola--chat-buffer))
         (params (list :message message)))
    (when (buffer-local-value 'oropendola--pending chat)
      (user-error "Oropendola is still answering; `oropendola-cancel' stops it"))
    (when (and buffer-file-name (eglot-managed-p))
      (setq params
            (append params
                    (list :textDocument (eglot--TextDocumentIdentifier)
                          :range (list :start (eglot--pos-to-lsp-position
                                               (or beg (point)))
                                       :end (eglot--pos-to-lsp-position
                                             (or end beg (point))))))))
    (with-current-buffer chat
      (when (or new (not (eq oropendola--server server)))
        (setq oropendola--conversation-id nil))
      (when oropendola--conversation-id
        (setq params (append params (list :conversationId
                                          oropendola--conversation-id))))
      (setq oropendola--server server)
      (let ((inhibit-read-only t) answer-at)
        (goto-char (point-max))
        (unless (bobp) (insert "\n"))
        (insert "## You\n\n" message "\n\n## Oropendola\n\n")
        (setq answer-at (point-marker))
        (insert "_Thinking..._\n")
        (let ((id (car (jsonrpc-async-request
                        server :oropendola/chat params
                        :success-fn (lambda (result)
                                      (oropendola--answer chat answer-at result nil))
                        :error-fn (lambda (err)
                                    (oropendola--answer chat answer-at nil err))
                        :timeout-fn (lambda ()
                                      (oropendola--answer
                                       chat answer-at nil '(:message "timed out")))
                        :timeout oropendola-request-timeout))))
          (setq oropendola--pending (cons server id)))))
    (display-buffer chat)
    chat))

(defun oropendola--answer (chat at result err)
  "Put RESULT, or the error ERR, in CHAT at marker AT."
  (when (buffer-live-p chat)
    (with-current-buffer chat
      (setq oropendola--pending nil)
      (let ((inhibit-read-only t))
        (save-excursion
          (goto-char at)
          (delete-region at (point-max))
          (if err
              (insert (format "_Failed: %s_\n" (oropendola--error-message err)))
            (setq oropendola--conversation-id
                  (or (plist-get result :conversationId)
                      oropendola--conversation-id))
            (insert (string-trim-right (or (plist-get result :content) "")) "\n"))))
      (let ((window (get-buffer-window chat t)))
        (when window (set-window-point window (point-max)))))))

(defun oropendola-cancel ()
  "Stop the chat that is under way."
  (interactive)
  (let* ((chat (get-buffer oropendola-buffer-name))
         (pending (and chat (buffer-local-value 'oropendola--pending chat))))
    (if (not pending)
        (message "[oropendola] No chat under way")
      (jsonrpc-notify (car pending) :$/cancelRequest (list :id (cdr pending)))
      (message "[oropendola] Cancelling"))))

(defun oropendola-search-results (query &optional limit)
  "Search the workspace index for QUERY; return up to LIMIT result plists."
  (append (plist-get (jsonrpc-request (oropendola--server) :oropendola/search
                                      (list :query query :limit (or limit 20)))
                     :results)
          nil))

;;;###autoload
(defun oropendola-search (query)
  "Search the workspace index for QUERY and list the hits with xref.
Run `oropendola-index-workspace' once first.  `xref-find-apropos'
searches the same index through `workspace/symbol'."
  (interactive (list (read-string "Search the workspace: ")))
  (let ((items
         (cl-loop for hit in (oropendola-search-results query)
                  for start = (plist-get (plist-get hit :range) :start)
                  collect (xref-make
                           (string-trim (or (plist-get hit :snippet) ""))
                           (xref-make-file-location
                            (oropendola--uri-to-path (plist-get hit :uri))
                            (1+ (plist-get start :line))
                            (plist-get start :character))))))
    (if items
        (xref-show-xrefs (lambda () items) nil)
      (message "[oropendola] Nothing found for %S" query))))

;;;###autoload
(defun oropendola-index-workspace (&optional force)
  "Send the workspace to Oropendola's index (only what changed).
With a prefix argument (FORCE non-nil), send every file again."
  (interactive "P")
  (jsonrpc-async-request
   (oropendola--server) :oropendola/indexWorkspace
   (list :force (if force t :json-false))
   :success-fn (lambda (r)
                 (message "[oropendola] Indexed: %s files scanned, %s sent, %s unchanged, %s skipped (%.1f s)"
                          (plist-get r :filesScanned) (plist-get r :filesSent)
                          (plist-get r :unchanged) (plist-get r :filesSkipped)
                          (/ (or (plist-get r :durationMs) 0) 1000.0)))
   :error-fn (lambda (err)
               (message "[oropendola] Indexing failed: %s" (oropendola--error-message err)))
   :timeout oropendola-request-timeout))

;;;###autoload
(defun oropendola-status ()
  "Show who is signed in, to which backend, and the connection state."
  (interactive)
  (let* ((s (jsonrpc-request (oropendola--server) :oropendola/status nil))
         (backend (plist-get s :backend))
         (connection (plist-get s :connection)))
    (message "[oropendola] %s at %s (%s, session %s); realtime %s"
             (if (eq (plist-get s :signedIn) t)
                 (format "Signed in as %s" (plist-get s :user))
               "Not signed in")
             (plist-get backend :url) (plist-get backend :environment)
             (plist-get s :session) (plist-get connection :state))
    s))

;;;###autoload
(defun oropendola-sign-in ()
  "Sign in with the browser (the server's command `oropendola.signIn').
The server opens the sign-in page (or shows its address) and waits
until you have signed in there."
  (interactive)
  (message "[oropendola] Waiting for the browser sign-in...")
  (jsonrpc-async-request
   (oropendola--server) :workspace/executeCommand
   (list :command "oropendola.signIn" :arguments [])
   :success-fn (lambda (r)
                 (message "[oropendola] Signed in%s"
                          (if (plist-get r :user) (format " as %s" (plist-get r :user)) "")))
   :error-fn (lambda (err)
               (message "[oropendola] Sign-in failed: %s" (oropendola--error-message err)))
   :timeout oropendola-request-timeout))

(oropendola-register)

(provide 'oropendola)
;;; oropendola.el ends here
