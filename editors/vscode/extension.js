// Starts `poseir lsp` for .pose files. Plain JavaScript: no build step, only `npm install`.
"use strict";

const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const settings = vscode.workspace.getConfiguration("poseir");
  const server = {
    command: settings.get("server.command", "poseir"),
    args: settings.get("server.args", ["lsp"]),
  };
  client = new LanguageClient(
    "poseir",
    "poseir",
    { run: server, debug: server },
    {
      documentSelector: [{ scheme: "file", language: "pose" }],
      initializationOptions: { debounce: settings.get("debounce", 0.25) },
      synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.pose") },
    }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
