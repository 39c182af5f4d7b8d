// Where the minibase server is, and the FC service name it answers to ([app] service).
//
// - Developer tool + a server on this computer: http://127.0.0.1:8000, with the tool's
//   domain check off (详情 → 本地设置 → 不校验合法域名…; project.config.json sets
//   urlCheck: false).
// - A phone (preview / real device): the computer's LAN address (minibase serve --host
//   0.0.0.0) while that check is off, or, for release, your HTTPS endpoint, added to the
//   console's allow-list (开发管理 → 开发设置 → 服务器域名 → request 合法域名).
module.exports = {
  endpoint: 'http://127.0.0.1:8000',
  service: 'todo-list-svc',
  // Leave empty to log in with wx.login (needs [auth.wechat] on the server; until then the
  // app offers the server's dev login). Set a name, e.g. 'alice', to always use the dev
  // login of a local server ([auth.dev] enabled).
  devUser: '',
}
