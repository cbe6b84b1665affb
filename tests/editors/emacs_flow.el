;;; emacs_flow.el --- drive Eglot + client-configs/emacs/oropendola.el end to end  -*- lexical-binding: t -*-

;;; Commentary:

;; Run by tests/editors/test_emacs.py in a copy of tests/editors/sample, after the shipped
;; set-up (`-L client-configs/emacs --eval "(require 'oropendola)"'):
;;
;;   emacs --batch -Q -L client-configs/emacs --eval "(require 'oropendola)" -l emacs_flow.el
;;
;; Only test instrumentation lives here: evidence collectors (advice), the answers a user would
;; type (through `completing-read-function', as vertico/ivy replace it), bounded waits, and
;; `(apply #'eglot (eglot--guess-contact))' because `eglot-ensure' never connects in --batch.
;; Evidence goes to stdout; any failure ends with (kill-emacs 1).

;;; Code:

(require 'cl-lib)
(require 'eglot)
(require 'oropendola)

(defvar flow-t0 (float-time))
(defvar flow-progress nil "Kinds of $/progress seen, newest first.")
(defvar flow-smr nil "Params of the window/showMessageRequest seen.")
(defvar flow-answers nil "Titles `completing-read' must pick, in order.")
(defvar flow-server nil)
(defvar flow-configuration nil "What Eglot answered to workspace/configuration.")

(defun flow-out (fmt &rest args)
  (princ (format "[emacs %5dms] %s\n" (round (* 1000 (- (float-time) flow-t0)))
                 (apply #'format fmt args))))

(defun flow-fail (fmt &rest args)
  (flow-out "FAIL: %s" (apply #'format fmt args))
  (when (and flow-server (jsonrpc-running-p flow-server))
    (with-current-buffer (jsonrpc-events-buffer flow-server)
      (princ (format "--- last of the eglot events buffer:\n%s\n"
                     (buffer-substring-no-properties
                      (max (point-min) (- (point-max) 6000)) (point-max))))))
  (kill-emacs 1))

(defun flow-wait (pred secs)
  "Run the event loop until PRED is non-nil or SECS elapse; return PRED's value."
  (let ((end (+ (float-time) secs)) value)
    (while (and (not (setq value (funcall pred))) (< (float-time) end))
      (accept-process-output nil 0.02))
    value))

;; Evidence collectors --------------------------------------------------------------------
(advice-add 'eglot-handle-notification :before
            (lambda (_server method &rest params)
              (when (eq method '$/progress)
                (let ((v (plist-get params :value)))
                  (push (plist-get v :kind) flow-progress)
                  (when (member (plist-get v :kind) '("begin" "end"))
                    (flow-out "$/progress %s %s" (plist-get v :kind)
                              (or (plist-get v :title) (plist-get v :message) "")))))))
(advice-add 'eglot-handle-request :before
            (lambda (_server method &rest params)
              (when (eq method 'window/showMessageRequest)
                (setq flow-smr params)
                (flow-out "window/showMessageRequest %S actions=%S"
                          (plist-get params :message)
                          (mapcar (lambda (a) (plist-get a :title))
                                  (plist-get params :actions))))))

;; Eglot's answer to the server's workspace/configuration request.
(advice-add 'eglot-handle-request :around
            (lambda (orig server method &rest params)
              (let ((result (apply orig server method params)))
                (when (eq method 'workspace/configuration)
                  (setq flow-configuration result))
                result)))

;; What the user picks: the next entry of `flow-answers', a regexp matched against the
;; candidates (code action titles, showMessageRequest actions).
(setq completing-read-function
      (lambda (prompt collection &rest _)
        (let* ((want (or (pop flow-answers)
                         (flow-fail "unexpected prompt %S" prompt)))
               (pick (cl-find-if (lambda (c) (string-match-p want c))
                                 (all-completions "" collection))))
          (flow-out "completing-read %S -> %S" (car (split-string prompt "\n")) pick)
          (or pick (flow-fail "no candidate matches %S in %S" want
                              (all-completions "" collection))))))

(defun flow-pick-code-action (beg end title-regexp &rest then)
  "Take the code action matching TITLE-REGEXP from BEG to END.
As \\[eglot-code-actions] from the keyboard; THEN answer the prompts that follow."
  (setq flow-answers (cons title-regexp then))
  (let ((this-command 'eglot-code-actions)
        (last-nonmenu-event ?\r))       ; invoked from the keyboard, not a mouse menu
    (condition-case err (eglot-code-actions beg end nil t)
      (error (flow-fail "code action %S signalled %S" title-regexp err)))))

;; 1. app.py: start Eglot, save, get the analysis -----------------------------------------
(flow-out "Emacs %s; eglot-server-programs[0] modes: %d, contact: %S"
          emacs-version (length (car (car eglot-server-programs)))
          (funcall (cdr (car eglot-server-programs))))
(find-file (expand-file-name "app.py"))
(condition-case err (apply #'eglot (eglot--guess-contact))
  (error (flow-fail "eglot failed to start: %S" err)))
(setq flow-server (flow-wait #'eglot-current-server 15))
(unless flow-server (flow-fail "no server"))
(unless (cl-typep flow-server 'oropendola-server)
  (flow-fail "server is a %S, not an oropendola-server" (type-of flow-server)))
(flow-out "connected: %s %s, managing %S"
          (plist-get (eglot--server-info flow-server) :name)
          (plist-get (eglot--server-info flow-server) :version)
          (eglot--major-modes flow-server))

(set-buffer-modified-p t)               ; a save with no change is not written
(save-buffer)
(defun flow-oropendola-diagnostics ()
  (cl-remove-if-not (lambda (d) (string-prefix-p "oropendola" (flymake-diagnostic-text d)))
                    (flymake-diagnostics)))
(unless (flow-wait #'flow-oropendola-diagnostics 15)
  (flow-fail "no diagnostics from the analysis after a save: %S" (flymake-diagnostics)))
(dolist (d (flow-oropendola-diagnostics))
  (flow-out "diagnostic line %d: %s [%s]" (line-number-at-pos (flymake-diagnostic-beg d))
            (flymake-diagnostic-text d) (flymake-diagnostic-type d)))

;; The settings also came through workspace/configuration, section "oropendola".
(unless (eq t (plist-get (elt flow-configuration 0) :analyzeOnSave))
  (flow-fail "workspace/configuration answered %S" flow-configuration))
(flow-out "workspace/configuration answered %S" flow-configuration)

;; 2. code actions on `total': list them, take "Document" (command + workspace/applyEdit) --
(let* ((beg (save-excursion (goto-char (point-min)) (search-forward "def total")
                            (line-beginning-position)))
       (end (save-excursion (goto-char beg) (search-forward "return result\n")))
       (before (buffer-string))
       (titles (mapcar (lambda (a) (plist-get a :title)) (eglot-code-actions beg end))))
  (flow-out "code actions on total: %S" titles)
  (dolist (want '("Oropendola: Explain" "Oropendola: Improve" "Oropendola: Document"
                  "Oropendola: Generate tests"))
    (unless (member want titles) (flow-fail "no code action %S" want)))
  (flow-pick-code-action beg end "\\`Oropendola: Document\\'")
  (unless (flow-wait (lambda () (not (equal before (buffer-string)))) 15)
    (flow-fail "the Document action did not change the buffer"))
  (unless (string-search "def total(values):" (buffer-string))
    (flow-fail "the edit lost the function:\n%s" (buffer-string)))
  (flow-out "buffer changed by Document (%d -> %d lines):\n%s"
            (with-temp-buffer (insert before) (count-lines (point-min) (point-max)))
            (count-lines (point-min) (point-max))
            (buffer-substring-no-properties
             beg (save-excursion (goto-char beg) (forward-line 8) (point)))))
(save-buffer)

;; 3. status, index, search ----------------------------------------------------------------
(let ((status (oropendola-status)))
  (unless (eq (plist-get status :signedIn) t) (flow-fail "status: %S" status))
  (flow-out "oropendola-status: user %s session %s" (plist-get status :user)
            (plist-get status :session)))
(let ((indexed nil))
  (advice-add 'message :after (lambda (fmt &rest _)
                                (when (and fmt (string-prefix-p "[oropendola] Index" fmt))
                                  (setq indexed t)))
              '((name . flow-index)))
  (oropendola-index-workspace)
  (unless (flow-wait (lambda () indexed) 15) (flow-fail "indexing did not finish"))
  (advice-remove 'message 'flow-index))
(let ((hits (oropendola-search-results "result")))
  (unless (cl-some (lambda (h) (string-suffix-p "/app.py" (plist-get h :uri))) hits)
    (flow-fail "search for \"result\" did not find app.py: %S" hits))
  (flow-out "oropendola-search \"result\": %d hits, first %s" (length hits)
            (file-name-nondirectory (plist-get (car hits) :uri))))

;; 4. the chat helper, with the selection as context, and a follow-up (after indexing) ------
(let* ((beg (save-excursion (goto-char (point-min)) (search-forward "def total")
                            (line-beginning-position)))
       (end (save-excursion (goto-char (point-min)) (search-forward "return result\n")))
       (chat (oropendola-chat "What does total do?" beg end))
       (done (lambda () (and (not (buffer-local-value 'oropendola--pending chat))
                             (buffer-local-value 'oropendola--conversation-id chat)))))
  (unless (flow-wait done 20) (flow-fail "no chat answer"))
  (let ((conversation (buffer-local-value 'oropendola--conversation-id chat))
        (text (with-current-buffer chat (buffer-string))))
    (when (or (string-search "_Failed" text) (string-search "_Thinking" text))
      (flow-fail "chat buffer:\n%s" text))
    (flow-out "*oropendola* (%s) after the chat, conversation %s:\n%s"
              (buffer-local-value 'major-mode chat) conversation text)
    (with-current-buffer chat            ; a follow-up from the chat buffer itself
      (oropendola-chat "And what does it return?"))
    (unless (flow-wait done 20) (flow-fail "no answer to the follow-up"))
    (unless (equal conversation (buffer-local-value 'oropendola--conversation-id chat))
      (flow-fail "the follow-up started another conversation"))
    (let ((text (with-current-buffer chat (buffer-string))))
      (unless (= 2 (cl-count-if (lambda (l) (equal l "## Oropendola"))
                                (split-string text "\n")))
        (flow-fail "chat buffer after the follow-up:\n%s" text))
      (when (string-search "_Failed" text) (flow-fail "follow-up failed:\n%s" text)))
    (flow-out "follow-up answered in the same conversation")))

;; 5. tasks.sh: "run `touch done.txt` in the shell", confirmed through completing-read ------
(find-file (expand-file-name "tasks.sh"))
(unless (flow-wait #'eglot-managed-p 5) (flow-fail "tasks.sh (%s) is not managed" major-mode))
(flow-out "tasks.sh: %s, managed by the same server: %s" major-mode
          (eq (eglot-current-server) flow-server))
(let ((beg (progn (goto-char (point-min)) (forward-line 2) (point)))
      (end (line-end-position)))
  (setq flow-smr nil)
  (flow-pick-code-action beg end "\\`Oropendola: run `touch done.txt` in the shell"
                         "\\`Execute\\'")
  (unless flow-smr (flow-fail "the server did not ask for confirmation"))
  (when flow-answers (flow-fail "prompts not reached: %S" flow-answers))
  (unless (flow-wait (lambda () (file-exists-p (expand-file-name "done.txt"))) 15)
    (flow-fail "done.txt was not created"))
  (flow-out "done.txt exists after confirming with Execute"))

;; 6. progress, shutdown -------------------------------------------------------------------
(unless (and (member "begin" flow-progress) (member "report" flow-progress)
             (member "end" flow-progress))
  (flow-fail "progress kinds seen: %S" flow-progress))
(flow-out "$/progress kinds seen: %s (%d notifications)"
          (string-join (delete-dups (reverse (copy-sequence flow-progress))) ",")
          (length flow-progress))
(let ((inhibit-message t)) (eglot-shutdown flow-server))
(flow-out "PASS")
(kill-emacs 0)
;;; emacs_flow.el ends here
