"""A pjsua2 phone for the end-to-end tests (tests/call_api.rs).

Usage: phone.py USER PASSWORD PBX_PORT SIP_PORT

It registers USER at 127.0.0.1:PBX_PORT, answers every call at once,
accepts REFERs (pjsip then calls the Refer-To target itself, with
`Replaces` when the Refer-To carries one, and reports in NOTIFYs), and
prints one line per event on standard output. It runs until standard
input closes, for two minutes at most.
"""

import select
import sys
import time

import pjsua2 as pj

USER, PASSWORD, PBX_PORT, SIP_PORT = sys.argv[1:5]
LIMIT_SECONDS = 120

calls = []


def say(line):
    print(line, flush=True)


class Call(pj.Call):
    def onCallState(self, prm):
        info = self.getInfo()
        say(f"call {info.callIdString} {info.stateText}")

    def onCallTransferRequest(self, prm):
        say(f"refer {prm.dstUri}")
        call = Call(account)
        calls.append(call)
        prm.newCall = call


class Account(pj.Account):
    def onRegState(self, prm):
        say(f"registration {prm.code}")

    def onIncomingCall(self, prm):
        call = Call(self, prm.callId)
        calls.append(call)
        answer = pj.CallOpParam()
        answer.statusCode = 200
        call.answer(answer)


endpoint = pj.Endpoint()
endpoint.libCreate()
config = pj.EpConfig()
# Callbacks run on this thread, from libHandleEvents.
config.uaConfig.threadCnt = 0
config.uaConfig.mainThreadOnly = True
config.logConfig.level = 0
config.logConfig.consoleLevel = 0
endpoint.libInit(config)
transport = pj.TransportConfig()
transport.port = int(SIP_PORT)
transport.boundAddress = "127.0.0.1"
endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
endpoint.libStart()
endpoint.audDevManager().setNullDev()

account_config = pj.AccountConfig()
account_config.idUri = f"sip:{USER}@127.0.0.1:{PBX_PORT}"
account_config.regConfig.registrarUri = f"sip:127.0.0.1:{PBX_PORT}"
account_config.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", USER, 0, PASSWORD))
account_config.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
account = Account()
account.create(account_config)

deadline = time.monotonic() + LIMIT_SECONDS
while time.monotonic() < deadline:
    endpoint.libHandleEvents(20)
    readable, _, _ = select.select([sys.stdin], [], [], 0)
    if readable and not sys.stdin.read(1):
        break

calls.clear()
account.shutdown()
endpoint.libDestroy()
