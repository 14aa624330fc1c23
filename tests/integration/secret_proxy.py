#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
A Secret Service provider with KeePassXC's manners, for the tests: it owns
org.freedesktop.secrets on one bus (FRONT) and passes every method call on
to the real provider (gnome-keyring) on another (BACK), and the provider's
answers and signals back, with two changes:

  - only the "plain" session is offered (OpenSession of any other algorithm
    is NotSupported, and libsecret falls back to plain), so secrets pass
    through here readable;
  - every secret read (Item.GetSecret, Service.GetSecrets) comes back with
    {USERNAME} replaced by the item's "username" attribute, as KeePassXC 2.7
    expands its placeholders in what it hands out.

Usage: secret_proxy.py FRONT_ADDRESS BACK_ADDRESS; prints "ready" once it
owns the name.  Needs python3-dbus and python3-gi.
"""

import sys

import dbus
import dbus.lowlevel
import dbus.mainloop.glib
from gi.repository import GLib

NAME = 'org.freedesktop.secrets'
ITEM = 'org.freedesktop.Secret.Item'
SERVICE = 'org.freedesktop.Secret.Service'
PROPS = 'org.freedesktop.DBus.Properties'


class Proxy:

    def __init__(self, front, back):
        self.front = front
        self.back = back
        front.add_message_filter(self.on_front)
        back.add_message_filter(self.on_back)
        back.add_match_string("type='signal',sender='%s'" % NAME)

    # -- calls from the program, on to the provider ---------------------------
    def on_front(self, conn, msg):
        if not isinstance(msg, dbus.lowlevel.MethodCallMessage):
            return dbus.lowlevel.HANDLER_RESULT_NOT_YET_HANDLED
        if msg.get_interface() == SERVICE and msg.get_member() == 'OpenSession':
            if msg.get_args_list()[0] != 'plain':
                self.front.send_message(dbus.lowlevel.ErrorMessage(
                    msg, 'org.freedesktop.DBus.Error.NotSupported', 'plain only'))
                return dbus.lowlevel.HANDLER_RESULT_HANDLED
        call = dbus.lowlevel.MethodCallMessage(NAME, msg.get_path(), msg.get_interface(),
                                               msg.get_member())
        if msg.get_signature():
            call.append(*msg.get_args_list(byte_arrays=True), signature=msg.get_signature())
        if msg.get_no_reply():
            call.set_no_reply(True)
            self.back.send_message(call)
        else:
            self.back.send_message_with_reply(
                call, lambda reply: self.answer(msg, reply), 120, require_main_loop=True)
        return dbus.lowlevel.HANDLER_RESULT_HANDLED

    def answer(self, call, reply):
        if isinstance(reply, dbus.lowlevel.ErrorMessage):
            args = reply.get_args_list()
            out = dbus.lowlevel.ErrorMessage(call, reply.get_error_name(),
                                             str(args[0]) if args else '')
        else:
            out = dbus.lowlevel.MethodReturnMessage(call)
            args = reply.get_args_list(byte_arrays=True)
            if call.get_member() == 'GetSecret' and call.get_interface() == ITEM:
                args[0] = self.expand(call.get_path(), args[0])
            elif call.get_member() == 'GetSecrets' and call.get_interface() == SERVICE:
                args[0] = dbus.Dictionary({path: self.expand(path, secret)
                                           for path, secret in args[0].items()},
                                          signature='o(oayays)')
            if reply.get_signature():
                out.append(*args, signature=reply.get_signature())
        self.front.send_message(out)

    def expand(self, path, secret):
        """(session, parameters, value, content type) with {USERNAME} expanded"""
        attrs = self.back.call_blocking(NAME, path, PROPS, 'Get', 'ss', (ITEM, 'Attributes'))
        user = str(attrs.get('username', '')).encode()
        session, params, value, ctype = secret
        value = dbus.ByteArray(bytes(value).replace(b'{USERNAME}', user))
        return dbus.Struct((session, params, value, ctype), signature='oayays')

    # -- signals of the provider, back to the program -----------------------
    def on_back(self, conn, msg):
        if not isinstance(msg, dbus.lowlevel.SignalMessage):
            return dbus.lowlevel.HANDLER_RESULT_NOT_YET_HANDLED
        if msg.get_interface() == 'org.freedesktop.DBus':
            return dbus.lowlevel.HANDLER_RESULT_NOT_YET_HANDLED
        sig = dbus.lowlevel.SignalMessage(msg.get_path(), msg.get_interface(),
                                          msg.get_member())
        if msg.get_signature():
            sig.append(*msg.get_args_list(byte_arrays=True), signature=msg.get_signature())
        self.front.send_message(sig)
        return dbus.lowlevel.HANDLER_RESULT_HANDLED


def main():
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    front = dbus.bus.BusConnection(sys.argv[1])
    back = dbus.bus.BusConnection(sys.argv[2])
    Proxy(front, back)
    if front.request_name(NAME, dbus.bus.NAME_FLAG_DO_NOT_QUEUE) != \
            dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER:
        sys.exit('cannot own %s' % NAME)
    print('ready', flush=True)
    GLib.MainLoop().run()


if __name__ == '__main__':
    main()
